"""The LMC report: barriers per rewind step, the paths, connectivity."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.summaries import LmcSummary
from jaxticket.experiments.plotting import mean_std, pct, plt


def lmc_table(rows: list[dict]) -> str:
  """Markdown table: rewind step, error/loss barriers and the children's
  test error (error columns in %, mean ± std over seeds)."""
  lines = ["| rewind step k | test error barrier (%) | train error barrier (%)"
           " | test loss barrier | child test error (%) |",
           "|---:|---:|---:|---:|---:|"]
  for r in rows:
    loss = r["test_loss_barrier"]
    lines.append(f"| {r['rewind_step']} | {mean_std(r['test_barrier'])} | "
                 f"{mean_std(r['train_barrier'])} | {loss['mean']:.4f} ± "
                 f"{loss['std']:.4f} | {mean_std(r['child_test_error'])} |")
  return "\n".join(lines)


def plot_lmc(summary: LmcSummary, path_png: str, barrier_png: str) -> None:
  """Test (solid) and train (dotted) error along the path per rewind step,
  and the test/train error barrier vs rewind step."""
  alphas = np.asarray(summary.alphas)
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, r in enumerate(summary.rows):
    color = f"C{i % 10}"
    ax.plot(alphas, 100 * np.asarray(r["curve"]["test_error"]), "-",
            color=color, label=f"k={r['rewind_step']}")
    ax.plot(alphas, 100 * np.asarray(r["curve"]["train_error"]), ":",
            color=color)
  conn = summary.connectivity
  if conn:
    for who, style in (("ticket", "k--"), ("scratch", "r--")):
      ax.plot(alphas, 100 * np.asarray(conn[f"{who}_to_pruned"][
          "curve_test_error"]), style, label=f"{who} to pruned solution")
  ax.set_xlabel("interpolation alpha")
  ax.set_ylabel("error (%)  (solid: test, dotted: train)")
  ax.set_title(f"linear paths between children, level {summary.level}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path_png, dpi=120)
  plt.close(fig)

  ks = np.array([r["rewind_step"] for r in summary.rows])
  fig, ax = plt.subplots(figsize=(6, 4))
  for key, label in (("test_barrier", "test"), ("train_barrier", "train")):
    m = np.array([r[key]["mean"] for r in summary.rows]) * 100
    sd = np.array([r[key]["std"] for r in summary.rows]) * 100
    ax.errorbar(ks, m, yerr=sd, marker="o", capsize=3, label=label)
  ax.axhline(100 * summary.stable_barrier, color="gray", ls="--", lw=1,
             label="stability threshold")
  ax.set_xscale("symlog", linthresh=max(1, int(ks[ks > 0].min()) if
                                        (ks > 0).any() else 1))
  ax.set_xlabel("rewind step k")
  ax.set_ylabel("error barrier (%)")
  ax.set_title("instability vs rewind step")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(barrier_png, dpi=120)
  plt.close(fig)


def write_lmc_report(wd: Workdir, summary: LmcSummary) -> None:
  """report.md, lmc_paths.png and instability.png for an ``lmc`` run."""
  what = ("the dense network" if not summary.level else
          f"the IMP ticket of level {summary.level} "
          f"({pct(summary.density)}% of weights)")
  stable = summary.stable_rewind_step
  text = [f"# lmc: instability of {what}", "",
          f"{summary.model} on {summary.dataset}, seeds "
          f"{summary.seeds}, {summary.children} children per rewind "
          f"step and seed (differing only in data order/augmentation), "
          f"{len(summary.alphas)} interpolation points, BatchNorm "
          f"statistics {'re-estimated' if summary.bn_reestimate else 'interpolated'}"
          " at each point. Barrier = max error along the path minus the mean "
          "of the endpoints' errors (Frankle et al. 2020).", "",
          lmc_table(summary.rows), "",
          (f"Stable (test barrier < {pct(summary.stable_barrier)}%) from "
           f"rewind step {stable} on." if stable is not None else
           f"Not stable at any rewind step tried (threshold "
           f"{pct(summary.stable_barrier)}%)."), "",
          "![error along the paths](lmc_paths.png)",
          "![barrier vs rewind step](instability.png)", ""]
  conn = summary.connectivity
  if conn:
    text += ["## Ticket-to-solution connectivity (Evci et al. 2022)", "",
             "Barriers between the retrained ticket and the pruned solution "
             "it came from (trained previous level under this mask), and "
             "between a random re-initialization of the mask, trained the "
             "same way, and that solution:", "",
             "| pair | test error barrier (%) | train error barrier (%) |",
             "|---|---:|---:|"]
    for who in ("ticket", "scratch"):
      c = conn[f"{who}_to_pruned"]
      text.append(f"| {who} to pruned solution | {mean_std(c['test_barrier'])}"
                  f" | {mean_std(c['train_barrier'])} |")
    text.append("")
  t = summary.timings_s
  text += [f"Time: parent {t['parent_s']:.1f} s, children "
           f"{t['children_s']:.1f} s, paths {t['paths_s']:.1f} s.", ""]
  plot_lmc(summary, wd.file("lmc_paths.png"), wd.file("instability.png"))
  write_atomic(wd.file("report.md"), "\n".join(text))
