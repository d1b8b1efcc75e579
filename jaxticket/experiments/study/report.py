"""The study report: one row per value of the studied key."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.summaries import StudySummary
from jaxticket.experiments.plotting import fmt, plt


def study_table(result: StudySummary) -> str:
  """Markdown table of a study (one row per factor value)."""
  lines = [f"| {result.factor} | best dense acc (%) | ticket acc (%) at "
           "sparsity | LT-RR (pts) | IMP-OMP (pts) | largest jackpot "
           "sparsity (%) | largest secondary sparsity (%) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for r in result.rows:
    lines.append(
        f"| {r['value']} | {fmt(r['best_dense_accuracy'])} (lr "
        f"{r['dense_lr']:g}) | {fmt(r['best_ticket_accuracy'])} at "
        f"{fmt(r['sparsity'])}% (lr {r['ticket_lr']:g}) | "
        f"{fmt(r['lt_rr_gap'], signed=True)} | "
        f"{fmt(r['imp_omp_gap'], signed=True)} | "
        f"{fmt(r['largest_jackpot_sparsity'])} | "
        f"{fmt(r['largest_secondary_sparsity'])} |")
  return "\n".join(lines)


def plot_study(result: StudySummary, path: str) -> None:
  """Gaps and largest winning sparsities against the factor's values."""
  rows = result.rows
  x = np.arange(len(rows))
  val = lambda k: np.array([np.nan if r[k] is None else 100 * r[k]
                            for r in rows], float)
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
  a1.plot(x, val("lt_rr_gap"), "o-", label="LT - RR")
  a1.plot(x, val("imp_omp_gap"), "s--", label="IMP - OMP")
  a1.axhline(0, color="gray", lw=1)
  a1.set_ylabel("gap at the largest checked sparsity (points)")
  a2.plot(x, val("largest_jackpot_sparsity"), "o-", label="jackpot")
  a2.plot(x, val("largest_secondary_sparsity"), "s--", label="secondary")
  a2.set_ylabel("largest sparsity with a ticket (%)")
  for ax in (a1, a2):
    ax.set_xticks(x)
    ax.set_xticklabels([r["value"] for r in rows])
    ax.set_xlabel(result.factor)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(f"{result.model} on {result.dataset}")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_study_report(wd: Workdir, result: StudySummary) -> None:
  plot_study(result, wd.file("study.png"))
  text = [f"# Study of {result.factor}: {result.model} on "
          f"{result.dataset}", "",
          "Each value ran the full sanity check (sub-workdirs named "
          f"`{result.factor}=VALUE`). Gaps are test-accuracy points at the "
          "largest checked sparsity, for the ticket at its best validation "
          "LR; an empty sparsity means no such ticket.", "",
          study_table(result), "", "![study](study.png)", ""]
  write_atomic(wd.file("report.md"), "\n".join(text))
