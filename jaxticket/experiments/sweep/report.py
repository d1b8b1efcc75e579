"""The sweep report: accuracy per grid point and level."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.summaries import SweepSummary
from jaxticket.experiments.plotting import density_axis, mean_std, pct, plt


def _point_label(point: dict) -> str:
  return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())


def sweep_table(summary: SweepSummary) -> str:
  """Markdown: per grid point, test/val accuracy at the densest and the
  sparsest level (mean ± std over seeds)."""
  points = []
  for r in summary.rows:
    if r["point"] not in points:
      points.append(r["point"])
  lines = ["| grid point | dense test acc (%) | sparsest density (%) | "
           "sparsest test acc (%) | best val acc (%) at density (%) |",
           "|---|---:|---:|---:|---:|"]
  for p in points:
    rows = [r for r in summary.rows if r["point"] == p]
    first, last = rows[0], rows[-1]
    best = max(rows, key=lambda r: -1 if r["val_accuracy"]["mean"] is None
               else r["val_accuracy"]["mean"])
    lines.append(f"| {_point_label(p)} | {mean_std(first['test_accuracy'])} "
                 f"| {pct(last['density'])} | {mean_std(last['test_accuracy'])}"
                 f" | {pct(best['val_accuracy']['mean'])} at "
                 f"{pct(best['density'])} |")
  return "\n".join(lines)


def write_sweep_report(wd: Workdir, summary: SweepSummary) -> None:
  """report.md and sweep.png (test accuracy vs density per grid point)."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  points = []
  for r in summary.rows:
    if r["point"] not in points:
      points.append(r["point"])
  for i, p in enumerate(points):
    rows = [r for r in summary.rows if r["point"] == p]
    d = np.array([r["density"] for r in rows]) * 100
    m = np.array([r["test_accuracy"]["mean"] for r in rows], float) * 100
    ax.plot(d, m, "o-", color=f"C{i % 10}", label=_point_label(p), ms=3)
  density_axis(ax)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"sweep: {summary.model} on {summary.dataset}")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(wd.file("sweep.png"), dpi=120)
  plt.close(fig)
  layout = [f"- `{p['workdir']}`: {_point_label(p['values']) or 'base'}; "
            f"{p['replicas']} replicas on {p.get('devices', 1)} device(s)"
            for p in summary.programs]
  hosts = summary.hosts
  if hosts.get("processes", 1) > 1:
    layout.append(f"\n{hosts['processes']} processes, layout "
                  f"`{hosts['layout']}` (split: each process runs whole "
                  "programs; span: every program over all processes' "
                  "devices).")
  text = [f"# sweep: {summary.model} on {summary.dataset}", "",
          f"Grid: {summary.grid}; {summary.seeds} seeds per point. "
          "Accuracies are mean ± std over seeds.", "",
          sweep_table(summary), "", "![accuracy vs density](sweep.png)", "",
          "Programs (each an IMP workdir):", *layout, ""]
  write_atomic(wd.file("report.md"), "\n".join(text))
