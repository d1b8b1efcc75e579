"""The IMP report: accuracy per level (table and plot)."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.summaries import ImpSummary
from jaxticket.experiments.plotting import density_axis, pct, plt


def imp_table(rows: list[dict]) -> str:
  """Markdown table: level, density, test/val accuracy mean +- std (%)."""
  lines = ["| level | density (%) | sparsity (%) | test acc (%) | val acc (%) |",
           "|---:|---:|---:|---:|---:|"]
  for r in rows:
    t, v = r["test_accuracy"], r["val_accuracy"]
    lines.append(f"| {r['level']} | {pct(r['density'])} | "
                 f"{pct(1 - r['density'])} | {pct(t['mean'])} ± {pct(t['std'])}"
                 f" | {pct(v['mean'])} ± {pct(v['std'])} |")
  return "\n".join(lines)


def plot_accuracy_vs_density(rows: list[dict], path: str, title: str) -> None:
  """Test accuracy vs. density on a log axis, mean line with a +-std band."""
  d = np.array([r["density"] for r in rows])
  m = np.array([r["test_accuracy"]["mean"] for r in rows], float) * 100
  s = np.array([r["test_accuracy"]["std"] for r in rows], float) * 100
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(d * 100, m, "o-", label="IMP ticket (mean over seeds)")
  ax.fill_between(d * 100, m - s, m + s, alpha=0.25, label="± 1 std")
  ax.axhline(m[0], color="gray", ls="--", lw=1, label="dense")
  density_axis(ax)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_imp_report(wd: Workdir, summary: ImpSummary) -> None:
  """report.md and accuracy_vs_density.png for an ``imp``/``train`` run."""
  rows = summary.levels
  title = (f"{summary.model} on {summary.dataset}, "
           f"{len(summary.seeds)} seeds, rewind={summary.rewind}")
  text = [f"# {wd.command}: {title}", "",
          f"IMP schedule `{summary.schedule}`, strategy "
          f"`{summary.strategy}`, rewind `{summary.rewind}` "
          f"(step {summary.rewind_step}). Accuracies are mean ± std over "
          "seeds; density counts prunable weights only.", "",
          imp_table(rows), ""]
  if len(rows) > 1:
    plot_accuracy_vs_density(rows, wd.file("accuracy_vs_density.png"), title)
    text += ["![test accuracy vs density](accuracy_vs_density.png)", ""]
  diverged = [f"level {r['level']}: seed {d['seed']} at step {d['step']}"
              for r in rows for d in r.get("diverged", [])]
  if diverged:
    text += ["Diverged (NaN/Inf loss; left out of the means): "
             + "; ".join(diverged) + ".", ""]
  if summary.auto_rewind:
    a = summary.auto_rewind
    text += [f"Rewind step chosen automatically: {a['chosen']} (earliest "
             f"step with a dense test-error barrier below "
             f"{pct(a['threshold'])}%; barriers by step: "
             + ", ".join(f"{k}: {pct(v)}%" for k, v in a["test_barrier"].items())
             + ("" if a["stable"] else "; none was stable") + ").", ""]
  write_atomic(wd.file("report.md"), "\n".join(text))
