"""The continual report: ACC/BWT/FWT per method (table) and each method's
accuracy matrix as a heat map (accuracy_matrix.png). Reads only the
summary."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import fmt, pct, plt
from jaxticket.experiments.summaries import ContinualSummary

LABELS = {"gated": "learned unit gates (HAT/DSN)",
          "dsn": "learned gates + DSN data-free replay",
          "fixed": "random unit masks, same size",
          "finetune": "fine-tuning one net",
          "separate": "a separate dense net per task",
          "separate_imp": "a separate IMP ticket per task"}


def _stat(s: dict, signed: bool = False) -> str:
  band = "" if s.get("ci_low") is None else \
      f" [{fmt(s['ci_low'], signed=signed)}, {fmt(s['ci_high'], signed=signed)}]"
  return f"{fmt(s['mean'], signed=signed)} ± {pct(s['std'])}{band}"


def table(summary: ContinualSummary) -> str:
  """Markdown table: method, ACC, BWT, FWT (%, mean ± std [95% CI])."""
  lines = ["| method | ACC (%) | BWT (%) | FWT (%) | units kept (%) |",
           "|---|---:|---:|---:|---:|"]
  for r in summary.rows:
    units = pct(float(np.mean(r["unit_fraction"])))
    lines.append(f"| {LABELS.get(r['method'], r['method'])} | "
                 f"{_stat(r['average_accuracy'])} | "
                 f"{_stat(r['bwt'], True)} | {_stat(r['fwt'], True)} | "
                 f"{units} |")
  return "\n".join(lines)


def matrix_table(row: dict) -> str:
  a = np.asarray(row["accuracy_matrix"])
  t = a.shape[0]
  head = "| after task \\ on task | " + " | ".join(map(str, range(t))) + " |"
  lines = [head, "|---:|" + "---:|" * t]
  for i in range(t):
    lines.append(f"| {i} | " + " | ".join(pct(x) for x in a[i]) + " |")
  return "\n".join(lines)


def replay_table(row: dict) -> str:
  """DSN replay per (stage, similarity rank): the replayed task per seed,
  its mask similarity to the stage's task, the impressions' KL to their
  Dirichlet labels first -> last, the logit MSE fit first -> last, task
  k's validation accuracy before -> after, and in how many seeds the
  replay was kept (a seed stops at its first rejection; means over the
  seeds still replaying). A seed whose replay loss became non-finite is
  counted as diverged (rejected) and left out of the MSE means; the MSE
  column then says so instead of showing a NaN."""
  lines = ["| after task | rank | replayed task (seeds) | mask similarity | "
           "impressions KL first -> last | logit MSE first -> last | "
           "val acc before -> after | kept (active seeds) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in row.get("replay", []):
    act = np.asarray(r.get("active", [True] * len(r["accepted"])), bool)
    if not act.any():
      continue
    m = lambda v: float(np.mean(np.asarray(v)[act]))
    div = np.asarray(r.get("diverged", [False] * len(act)), bool) & act
    fine = act & ~div

    def mse(v):
      v = np.asarray([np.nan if x is None else x for x in v], np.float64)
      v = v[fine & np.isfinite(v)]
      return f"{float(np.mean(v)):.4f}" if len(v) else "-"

    fit = f"{mse(r['distill_first'])} -> {mse(r['distill_last'])}"
    if div.any():
      fit += f" (diverged in {int(div.sum())}/{int(act.sum())})"
    task = r["task"] if isinstance(r["task"], list) else [r["task"]]
    lines.append(
        f"| {r['stage']} | {r.get('rank', 0)} | "
        f"{','.join(str(t) for t, a in zip(task, act) if a)} | "
        f"{m(r.get('similarity', [0] * len(act))):.3f} | "
        f"{m(r['synth_kl_first']):.4f} -> {m(r['synth_kl_last']):.4f} | "
        f"{fit} | "
        f"{100 * m(r.get('val_before', [0] * len(act))):.2f} -> "
        f"{100 * m(r.get('val_after', [0] * len(act))):.2f} | "
        f"{int(np.sum(np.asarray(r['accepted'])[act]))}/{int(act.sum())} |")
  return "\n".join(lines)


def plot(summary: ContinualSummary, path: str) -> None:
  """One heat map per method: A[i, j] (%), mean over seeds."""
  n = len(summary.rows)
  fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
  for ax, r in zip(axes[0], summary.rows):
    a = np.asarray(r["accuracy_matrix"]) * 100
    im = ax.imshow(a, vmin=0, vmax=100, cmap="viridis")
    for i in range(a.shape[0]):
      for j in range(a.shape[1]):
        ax.text(j, i, f"{a[i, j]:.0f}", ha="center", va="center",
                color="w" if a[i, j] < 60 else "k", fontsize=8)
    ax.set_title(LABELS.get(r["method"], r["method"]), fontsize=9)
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task i")
    ax.set_xticks(range(a.shape[1]))
    ax.set_yticks(range(a.shape[0]))
  fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="test acc (%)")
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)


def write_report(wd: Workdir, summary: ContinualSummary) -> None:
  plot(summary, wd.file("accuracy_matrix.png"))
  parts = [
      f"# Task-incremental subnetworks: {summary.sequence} "
      f"{summary.dataset}, {summary.tasks} tasks",
      "",
      f"{summary.classes_per_task} classes per task, {summary.head}; "
      f"shared MLP {summary.widths}; {summary.steps_per_task} steps per "
      f"task; seeds {summary.seeds}. ACC = mean final accuracy, BWT = "
      "mean(A[T-1, j] - A[j, j]) over j < T-1 (negative: forgetting), FWT "
      "= mean(A[j-1, j] - untrained accuracy on j) over j >= 1 (Lopez-Paz "
      "& Ranzato 2017).",
      "", table(summary), "",
      "![accuracy matrices](accuracy_matrix.png)", ""]
  for r in summary.rows:
    parts += [f"## {LABELS.get(r['method'], r['method'])}: A[i, j] "
              "(test %, mean over seeds)", "", matrix_table(r), ""]
    if r.get("replay"):
      parts += ["Data-free replay (BWT above is measured with it; compare "
                "the gated row for BWT without it):", "", replay_table(r),
                ""]
  parts.append(f"Wall time: {summary.wall_time_s:.1f} s.")
  write_atomic(wd.file("report.md"), "\n".join(parts) + "\n")


__all__ = ["table", "plot", "write_report", "matrix_table"]
