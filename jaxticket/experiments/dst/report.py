"""The dst report: accuracy with CIs, accuracy and gradient norm vs step,
the gradient norm at mask updates, barriers to the pruned solution."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import fmt, pct, plt
from jaxticket.experiments.summaries import DstSummary


def _acc(stat: dict) -> str:
  if stat["mean"] is None:
    return "—"
  ci = ("" if stat.get("ci_low") is None else
        f" [{pct(stat['ci_low'])}, {pct(stat['ci_high'])}]")
  return f"{pct(stat['mean'])} ± {pct(stat['std'])}{ci}"


def _num(stat: dict, scale: float = 1.0, digits: int = 3) -> str:
  if stat["mean"] is None:
    return "—"
  return f"{scale * stat['mean']:.{digits}f}"


def dst_table(summary: DstSummary) -> str:
  """Markdown table per level: accuracy (mean ± std [95% CI] over seeds),
  density, training budget, gradient flow, barrier to the pruned solution."""
  out = []
  for level in summary.levels:
    rows = [r for r in summary.rows if r["level"] == level]
    out += [f"IMP level {level}: density "
            f"{pct(summary.densities[str(level)])}% (sparsity "
            f"{pct(1 - summary.densities[str(level)])}%)", "",
            "| method | density (%) | test acc (%) mean ± std [95% CI] | "
            "val acc (%) | total steps | grad norm init -> end | "
            "distance from start | test err barrier to pruned (%) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
      div = f" ({len(r['diverged_seeds'])} diverged)" if r[
          "diverged_seeds"] else ""
      out.append(
          f"| {r['method']}{div} | {pct(r['density'])} | "
          f"{_acc(r['test_accuracy'])} | {pct(r['val_accuracy']['mean'])} | "
          f"{r['budget_steps']} | {_num(r['grad_norm_init'])} -> "
          f"{_num(r['grad_norm_final'])} | {_num(r['distance'], digits=2)} | "
          f"{_num(r['barrier_test'], 100, 2)} |")
    out.append("")
  return "\n".join(out).rstrip()


def comparison_table(summary: DstSummary) -> str:
  """Every method minus the ticket (test accuracy, Welch 95% CI)."""
  lines = ["| level | method | minus ticket (points) | 95% CI | p |",
           "|---:|---|---:|---:|---:|"]
  for c in summary.comparisons:
    ci = ("—" if c["ci_low"] is None else
          f"[{fmt(c['ci_low'], signed=True)}, "
          f"{fmt(c['ci_high'], signed=True)}]")
    p = "—" if c["p_value"] is None else f"{c['p_value']:.3f}"
    lines.append(f"| {c['level']} | {c['method']} | "
                 f"{fmt(c['gap'], signed=True)} | {ci} | {p} |")
  return "\n".join(lines)


def _per_level_plot(summary: DstSummary, key: str, ylabel: str, path: str,
                    scale: float = 1.0, log: bool = False) -> None:
  levels = summary.levels
  fig, axes = plt.subplots(1, len(levels), figsize=(6 * len(levels), 4.2),
                           squeeze=False)
  for ax, level in zip(axes[0], levels):
    for i, c in enumerate(r for r in summary.curves if r["level"] == level):
      ys = np.array([np.nan if v is None else v for v in c[key]], float)
      ax.plot(c["steps"], scale * ys, marker=".", color=f"C{i % 10}",
              ls="-" if i < 10 else "--", label=c["method"])
    ax.set_title(f"level {level} (density "
                 f"{pct(summary.densities[str(level)])}%)")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if log:
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_updates(summary: DstSummary, path: str) -> None:
  """Change of the masked gradient norm at each mask update."""
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for i, u in enumerate(summary.updates):
    if u["steps"]:
      ax.plot(u["steps"], u["change"], marker="o", ms=3, color=f"C{i % 10}",
              label=f"{u['method']} (level {u['level']})")
  ax.axhline(0, color="gray", lw=1)
  ax.set_xlabel("training step of the mask update")
  ax.set_ylabel("masked gradient norm: after - before")
  ax.set_title("gradient flow at mask updates")
  ax.grid(alpha=0.3)
  if any(u["steps"] for u in summary.updates):
    ax.legend(fontsize=7)
  else:  # static methods only: nothing updates the mask
    ax.text(0.5, 0.5, "no method updates the mask", ha="center",
            transform=ax.transAxes)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_barriers(summary: DstSummary, path: str) -> None:
  """Test error barrier to the ticket's pruned solution, per method."""
  levels = summary.levels
  methods = summary.methods
  fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(methods) * len(levels)),
                                  4.2))
  width = 0.8 / len(levels)
  x = np.arange(len(methods))
  for j, level in enumerate(levels):
    rows = {r["method"]: r for r in summary.rows if r["level"] == level}
    m = [100 * (rows[k]["barrier_test"]["mean"] or 0) for k in methods]
    sd = [100 * (rows[k]["barrier_test"]["std"] or 0) for k in methods]
    ax.bar(x + j * width, m, width, yerr=sd, capsize=2,
           label=f"level {level}")
  ax.set_xticks(x + width * (len(levels) - 1) / 2)
  ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
  ax.set_ylabel("test error barrier to pruned solution (%)")
  ax.grid(alpha=0.3, axis="y")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_dst_report(wd: Workdir, summary: DstSummary) -> None:
  """report.md and its plots for a ``dst`` run."""
  st = summary.settings
  sch = st["schedule"]
  text = [
      f"# dst: dynamic sparse training vs tickets, {summary.model} on "
      f"{summary.dataset}", "",
      f"{len(summary.seeds)} seeds {summary.seeds}, {summary.steps} steps "
      "per training, every method at the IMP ticket's kept count of each "
      "level, all (level x method x seed) replicas in one compiled program "
      f"(mask updaters chosen per replica: {', '.join(st['updaters'])}). "
      f"SET/RigL: drop fraction {st['drop_fraction']} cosine-decayed to 0 at "
      f"step {sch['rigl_end']}, every {sch['update_every']} steps, from "
      f"{st['distribution'].upper()} random masks; GMP/GraNet prune from "
      f"step {sch['prune_start']} to {sch['prune_end']} (GMP per layer, "
      f"{st['gmp_ratio']} targets; GraNet global with death rate "
      f"{st['death_rate']} -> {st['death_rate_min']}); sparse random "
      f"starts use the {st['sparse_init'].replace('_', '-')} init. The "
      f"ticket is rewound to {st['rewind']}"
      + (f" (step {st['rewind_step']})" if st["rewind"] == "step" else "")
      + f"; `finetune` fine-tunes the pruned level L-1 weights at LR "
      f"{st['finetune_lr']:g} ({st['finetune_schedule']} schedule; training "
      f"LR {st['lr']:g}). *Total steps* counts every training step behind a "
      "result, the IMP levels that found the mask included: ticket and "
      "prune-and-fine-tune cost the same.", "",
      "Accuracies: mean ± std over seeds [Student-t 95% CI of the mean]. "
      "Gradient norm: L2 norm of the masked training-loss gradient on "
      f"{st['grad_examples']} fixed training examples (Evci et al. 2022). "
      "Barrier: max test error along the straight line from the solution to "
      "the ticket's pruned solution (IMP level L-1 trained, under the "
      "level-L mask) minus the endpoints' mean, "
      f"{st['alphas']} points"
      + (", BatchNorm re-estimated" if st["bn_reestimate"] else "") + ".", "",
      dst_table(summary), "",
      "## Against the ticket", "",
      "Test accuracy of each method minus the IMP ticket's at the same "
      "level (Welch 95% CI). `finetune` is prune-and-fine-tune at equal "
      "total steps (Liu et al. 2021).", "",
      comparison_table(summary), "",
      "## Curves", "",
      "![test accuracy vs step](accuracy_vs_step.png)", "",
      "![gradient norm vs step](grad_norm_vs_step.png)", "",
      "![gradient norm change at mask updates](mask_updates.png)", "",
      "![barriers to the pruned solution](barriers.png)", ""]
  if summary.updates:
    text += ["Gradient norm at the mask updates (mean over seeds of the "
             "masked-gradient norm after minus before, same minibatch):", "",
             "| level | method | updates | mean change | first | last |",
             "|---:|---|---:|---:|---:|---:|"]
    for u in summary.updates:
      ch = u["change"]
      text.append(
          f"| {u['level']} | {u['method']} | {u['updates']} | "
          + (f"{np.mean(ch):+.4f} | {ch[0]:+.4f} | {ch[-1]:+.4f} |" if ch
             else "— | — | — |"))
    text.append("")
  text += [f"Wall time {summary.wall_time_s:.0f} s. IMP runs: "
           f"`{summary.imp_workdir}`"
           + (f", `{summary.finetune_workdir}`" if summary.finetune_workdir
              else "") + ".", ""]
  _per_level_plot(summary, "test_accuracy", "test accuracy (%)",
                  wd.file("accuracy_vs_step.png"), scale=100)
  _per_level_plot(summary, "grad_norm", "masked gradient norm",
                  wd.file("grad_norm_vs_step.png"), log=True)
  plot_updates(summary, wd.file("mask_updates.png"))
  plot_barriers(summary, wd.file("barriers.png"))
  write_atomic(wd.file("report.md"), "\n".join(text))
