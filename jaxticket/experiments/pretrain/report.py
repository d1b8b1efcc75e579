"""report.md and the console text of ``jaxticket pretrain``."""

from __future__ import annotations

import json
import os

from jaxticket.core.stats import mean_ci
from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import plt
from jaxticket.experiments.summaries import PretrainSummary


def fmt(s: dict, pct: bool = True) -> str:
  """mean ± 95% CI half-width (or ± std with one value)."""
  if s is None or s.get("mean") is None:
    return "-"
  scale = 100.0 if pct else 1.0
  lo, hi = mean_ci([v for v in s.get("per_seed", []) if v is not None])
  half = (hi - lo) / 2 if lo is not None else None
  tail = f" ± {half * scale:.1f}" if half is not None else ""
  return (f"{s['mean'] * scale:.1f}{tail}" if pct
          else f"{s['mean']:.3f}{tail}")


def console_text(summary: PretrainSummary) -> str:
  m = summary.mlm
  lines = [f"pre-trained on {summary.corpus} ({summary.train_examples} "
           f"windows, {summary.steps} steps, {summary.wall_time_s:.0f} s): "
           f"MLM test loss {fmt(m['test_loss'], False)}, masked-token "
           f"accuracy {fmt(m['test_accuracy'])}%",
           f"checkpoint: --config.init.checkpoint={summary.checkpoint}"]
  for d in summary.downstream:
    lines.append(f"{d['task']}: test accuracy pretrained "
                 f"{fmt(d['pretrained']['test_accuracy'])}% vs scratch "
                 f"{fmt(d['scratch']['test_accuracy'])}% (majority "
                 f"{100 * d['majority_test']:.1f}%)")
  return "\n".join(lines)


def plot_curves(wd: Workdir, summary: PretrainSummary, path: str) -> None:
  """Validation masked-token accuracy over pre-training, and each
  downstream task's validation accuracy by start (from metrics.jsonl)."""
  rows = []
  if os.path.exists(wd.file("metrics.jsonl")):
    with open(wd.file("metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f if line.strip()]
  k = len(summary.downstream) + 1
  fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.5), squeeze=False)
  ax = axes[0][0]
  for r in sorted({r["replica"] for r in rows if r.get("stage") ==
                   "pretrain"}):
    pts = [(x["step"], x["val_accuracy"]) for x in rows
           if x.get("stage") == "pretrain" and x["replica"] == r]
    ax.plot(*zip(*pts), marker="o", label=f"seed {r}")
  ax.set(title=f"MLM on {summary.corpus}", xlabel="step",
         ylabel="val masked-token accuracy")
  for i, d in enumerate(summary.downstream, start=1):
    ax = axes[0][i]
    stage = [x for x in rows if x.get("stage") == f"finetune_{d['task']}"]
    n = len(d["pretrained"]["test_accuracy"]["per_seed"])
    for r in sorted({x["replica"] for x in stage}):
      pts = [(x["step"], x["val_accuracy"]) for x in stage
             if x["replica"] == r]
      ax.plot(*zip(*pts), marker="o", color="C0" if r < n else "C1",
              label=("pretrained" if r < n else "scratch")
              if r in (0, n) else None)
    ax.axhline(d["majority_test"], color="gray", ls=":", label="majority class (test)")
    ax.set(title=f"fine-tuning on {d['task']}", xlabel="step",
           ylabel="val accuracy")
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_report(wd: Workdir, summary: PretrainSummary) -> None:
  """report.md and curves.png."""
  m = summary.mlm
  plot_curves(wd, summary, wd.file("curves.png"))
  text = [f"# pretrain: masked-LM pre-training on {summary.corpus}", "",
          f"Encoder {summary.model}; tokenizer {summary.tokenizer} "
          f"({summary.vocab_size} ids); {summary.train_examples} training "
          f"windows, {summary.steps} steps; wall time "
          f"{summary.wall_time_s:.0f} s ({summary.timings_s}).", "",
          "| split | MLM loss | masked-token accuracy (%) |", "|---|---|---|",
          f"| validation | {fmt(m['val_loss'], False)} | "
          f"{fmt(m['val_accuracy'])} |",
          f"| test | {fmt(m['test_loss'], False)} | "
          f"{fmt(m['test_accuracy'])} |", "",
          f"Checkpoint: `--config.init.checkpoint={summary.checkpoint}`.", "",
          "![curves](curves.png)", ""]
  if summary.downstream:
    text += ["## Downstream: fine-tuned from the checkpoint vs from scratch",
             "", "Same seeds (head init, data order) for both; mean ± 95% "
             "CI over seeds.", "",
             "| task | classes | majority (%) | pretrained test (%) | "
             "scratch test (%) | paired gap (pts) |",
             "|---|---|---|---|---|---|"]
    for d in summary.downstream:
      text.append(f"| {d['task']} | {d['classes']} | "
                  f"{100 * d['majority_test']:.1f} | "
                  f"{fmt(d['pretrained']['test_accuracy'])} | "
                  f"{fmt(d['scratch']['test_accuracy'])} | "
                  f"{fmt(d['paired_gap'])} |")
  write_atomic(wd.file("report.md"), "\n".join(text) + "\n")
