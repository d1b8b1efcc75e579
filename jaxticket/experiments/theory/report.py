"""The ``theory`` report: greedy loss gaps and pruning; the teacher-student
phase diagram, samples needed and convergence."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import mean_std, plt
from jaxticket.experiments.summaries import TheorySummary

METHOD_NAMES = {"greedy": "greedy forward selection", "l1": "L1-norm units",
                "random": "random units"}


#: The reference slopes of the loss-gap plot (Ye et al. 2020, see
#: :mod:`jaxticket.subnetworks.greedy`, "Rates").
RATE_LABELS = {
    1: "slope -1: O(1/n), random subsets; greedy in general",
    2: "slope -2: O(1/n^2), greedy, large N (Ye et al.)"}


def _slope(x) -> str:
  return "—" if x is None else f"{x:.2f}"


def greedy_tables(g: dict) -> str:
  lines = ["Loss-gap decay (log-log slope of training-loss gap vs units, "
           "mean over seeds):", "",
           "(fitted for 2 <= n <= N/4: at n = N every method is the full "
           "layer)", "", "| layer | units | greedy | L1-norm | random |",
           "|---:|---:|---:|---:|---:|"]
  for c in g["curves"]:
    lines.append(f"| {c['layer']} | {c['units']} | "
                 f"{_slope(c['greedy']['slope'])} | {_slope(c['l1']['slope'])}"
                 f" | {_slope(c['random']['slope'])} |")
  p = g["pruning"]
  lines += ["", "Pruning layer by layer to the tolerance (test accuracy %, "
            f"full net {mean_std(p['full_test_accuracy'])}):", "",
            "| layer | units | kept | greedy (before / after fine-tune) | "
            "L1-norm | random |", "|---:|---:|---:|---|---|---|"]
  for r in p["layers"]:
    cell = lambda m: (f"{mean_std(r[f'{m}_before_finetune'])} / "
                      f"{mean_std(r[f'{m}_after_finetune'])}")
    lines.append(f"| {r['layer']} | {r['units']} | "
                 f"{r['kept']['mean']:.1f} | {cell('greedy')} | {cell('l1')} "
                 f"| {cell('random')} |")
  return "\n".join(lines)


def plot_loss_gap(g: dict, path: str) -> None:
  curves = g["curves"]
  fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4),
                           squeeze=False)
  for ax, c in zip(axes[0], curves):
    n = np.array(c["sizes"], float)
    for m in ("greedy", "l1", "random"):
      gap = np.array(c[m]["gap"])
      ax.loglog(n[gap > 0], gap[gap > 0], ".-", label=METHOD_NAMES[m])
    g0 = np.array(c["greedy"]["gap"])
    if len(n) > 1 and g0[1] > 0:  # slopes anchored at greedy's n = 2
      for p, ls in ((1, "--"), (2, ":")):
        ax.loglog(n, g0[1] * (n / 2) ** -p, color="gray", ls=ls, lw=1,
                  label=RATE_LABELS[p])
    top = max(c["units"] / 4, 3)
    if n[-1] > top:  # the slopes are fitted for 2 <= n <= N/4
      ax.axvspan(top, n[-1], color="gray", alpha=0.1, lw=0)
    ax.set_xlabel("units kept n")
    ax.set_ylabel("training loss gap L(subnet) - L(full)")
    ax.set_title(f"hidden layer {c['layer']} ({c['units']} units)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  fig.suptitle("Greedy forward selection (Ye et al. 2020): loss gap vs size")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def teacher_tables(t: dict) -> str:
  lines = []
  for s in t["students"]:
    lines += [f"Success rate, student `{s}` (rows: inputs kept per teacher "
              "unit r, unpruned hidden weights K r; columns: samples N):", "",
              "| r | K r | " + " | ".join(str(n) for n in t["samples"]) + " |",
              "|---:|---:|" + "---:|" * len(t["samples"])]
    for i, (r, kr) in enumerate(zip(t["kept"], t["unpruned"])):
      lines.append(f"| {r} | {kr} | " + " | ".join(
          f"{v:.2f}" for v in t["success"][s][i]) + " |")
    lines.append("")
  lines += ["Samples needed (smallest N with success >= 1/2 from there on) "
            "vs unpruned hidden weights K r:", "",
            "| student | " + " | ".join(f"K r={k}" for k in t["unpruned"])
            + " | log-log slope |", "|---|" + "---:|" * (len(t["unpruned"])
                                                        + 1)]
  for s in t["students"]:
    lines.append(f"| {s} | " + " | ".join(
        "—" if v is None else str(v) for v in t["samples_needed"][s])
                 + f" | {_slope(t['needed_slope'][s])} |")
  lines += ["", f"Steps until the median test error < "
            f"{t.get('converge_to', t['threshold']):g} "
            f"at N = {max(t['samples'])}:", "",
            "| student | " + " | ".join(f"r={k}" for k in t["kept"]) + " |",
            "|---|" + "---:|" * len(t["kept"])]
  for s, by in t["steps_to_threshold"].items():
    lines.append(f"| {s} | " + " | ".join(
        "—" if by.get(str(k)) is None else str(by[str(k)])
        for k in t["kept"]) + " |")
  return "\n".join(lines)


def plot_phase(t: dict, path: str) -> None:
  students = t["students"]
  fig, axes = plt.subplots(1, len(students), figsize=(4.3 * len(students),
                                                      3.6), squeeze=False)
  for ax, s in zip(axes[0], students):
    rate = np.array(t["success"][s])
    im = ax.imshow(rate, origin="lower", vmin=0, vmax=1, cmap="viridis",
                   aspect="auto")
    ax.set_xticks(range(len(t["samples"])))
    ax.set_xticklabels([str(n) for n in t["samples"]])
    ax.set_yticks(range(len(t["kept"])))
    ax.set_yticklabels([f"{r} ({kr})" for r, kr in
                        zip(t["kept"], t["unpruned"])])
    for i in range(rate.shape[0]):
      for j in range(rate.shape[1]):
        ax.text(j, i, f"{rate[i, j]:.2f}", ha="center", va="center",
                color="w" if rate[i, j] < 0.5 else "k", fontsize=7)
    ax.set_xlabel("training samples N")
    ax.set_ylabel("teacher inputs per unit r (K r)")
    ax.set_title(f"student: {s}")
  fig.colorbar(im, ax=axes[0].tolist(), label="success rate")
  fig.suptitle(f"Teacher-student (Zhang et al. 2021), d={t['dim']}, "
               f"K={t['hidden']}, {t['trials']} trials")
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)


def plot_needed(t: dict, path: str) -> None:
  fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
  kr = np.array(t["unpruned"], float)
  for s in t["students"]:
    need = t["samples_needed"][s]
    pts = [(x, y) for x, y in zip(kr, need) if y is not None]
    if pts:
      x, y = np.array(pts).T
      a.loglog(x, y, "o-", label=s)
  a.loglog(kr, kr * 2, "k:", lw=1, label="N = 2 K r (slope 1)")
  a.set_xlabel("unpruned hidden weights of the teacher, K r")
  a.set_ylabel("samples needed (success >= 1/2)")
  a.grid(alpha=0.3, which="both")
  a.legend(fontsize=7)
  steps = t["curve_steps"]
  for k, curve in t["curves"].get("teacher_mask", {}).items():
    b.semilogy(steps, curve, label=f"teacher mask, r={k}")
  b.axhline(t["threshold"], color="k", ls="--", lw=1, label="threshold")
  if "converge_to" in t:
    b.axhline(t["converge_to"], color="gray", ls=":", lw=1,
              label="convergence level")
  b.set_xlabel("training step")
  b.set_ylabel("median relative test error")
  b.set_title(f"convergence at N = {max(t['samples'])}")
  b.grid(alpha=0.3, which="both")
  b.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def console_text(summary: TheorySummary) -> str:
  parts = []
  if summary.greedy:
    parts.append(greedy_tables(summary.greedy))
  if summary.teacher_student:
    parts.append(teacher_tables(summary.teacher_student))
  return "\n\n".join(parts)


def write_report(wd: Workdir, summary: TheorySummary) -> None:
  """report.md, loss_gap.png, phase_diagram.png, samples_needed.png."""
  text = [f"# theory: {summary.model} on {summary.dataset}", ""]
  if summary.greedy:
    g = summary.greedy
    plot_loss_gap(g, wd.file("loss_gap.png"))
    text += ["## Greedy forward selection (Ye et al. 2020)", "",
             f"Trained MLP with hidden widths {g['hidden']}, {g['seeds']} "
             "seeds. Every method keeps n units of one hidden layer and "
             "averages them (N/n times the kept units' outgoing weights; "
             "n = N is the full layer); the gap is the training loss minus "
             "the full network's on the evaluation examples. Ye et al. "
             "(one hidden layer into a linear output, loss convex in the "
             "output: here the last hidden layer): a random n-subset is "
             "Monte Carlo, gap O(1/n), as is greedy selection in general "
             "(Frank-Wolfe with step 1/n); greedy reaches O(1/n^2) on "
             "sufficiently over-parameterized networks. The constants grow "
             "with N times the largest unit contribution, so small n is "
             "pre-asymptotic; the shaded range n > N/4 is left out of the "
             "fits (n = N is the full layer).", "",
             greedy_tables(g), "", "![loss gap](loss_gap.png)", ""]
  if summary.teacher_student:
    t = summary.teacher_student
    plot_phase(t, wd.file("phase_diagram.png"))
    plot_needed(t, wd.file("samples_needed.png"))
    text += ["## Teacher-student (Zhang et al. 2021)", "",
             f"Teacher: d={t['dim']} Gaussian inputs, K={t['hidden']} ReLU "
             "units each reading r inputs, output weights 1/K. Students of "
             f"the same architecture, init `{t['init']}`, {t['trials']} "
             "trials per cell; success = relative test error < "
             f"{t['threshold']:g}. Zhang et al.: the samples needed grow in "
             "proportion to the unpruned hidden weights, and the pruned "
             "(teacher-mask) student converges faster.", "",
             teacher_tables(t), "", "![phase diagram](phase_diagram.png)",
             "", "![samples needed](samples_needed.png)", ""]
  text.append(f"Wall time {summary.wall_time_s:.0f} s (" + ", ".join(
      f"{k} {v:.0f} s" for k, v in summary.timings_s.items()) + ").")
  write_atomic(wd.file("report.md"), "\n".join(text) + "\n")
