"""The sanity-check report: verdicts in words and tables, accuracy per
setting, LR and sparsity, the diagnostics."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.summaries import SanitySummary
from jaxticket.experiments.plotting import density_axis, pct, plt
from jaxticket.experiments.sanity.verdict import describe


#: Colour and line style of each setting in the plots.
SETTING_STYLE = {"ticket": ("C0", "o-"), "omp": ("C1", "s--"),
                 "random_reinit": ("C3", "v-"), "small_dense": ("C2", "^-"),
                 "random_prune": ("C4", "x:"), "shuffle": ("C5", "d:"),
                 "smart_ratio": ("C6", "*:")}

def verdict_table(verdicts: list[dict]) -> str:
  """Markdown: one row per checked sparsity with the outcome (the class, or
  inconclusive), the seeds behind it, the bootstrap agreement and each
  condition (✓ holds, ✗ fails; ? when its CI straddles the threshold)."""
  lines = ["| sparsity (%) | outcome | class (point) | seeds | resamples "
           "agreeing | ticket LR | 1 sparse | 2 > SDT | 3 > RR | "
           "4 ~ dense@LR | 5 ~ best dense | gap vs best dense (pts, 95% CI) |",
           "|---:|:---|:---|---:|---:|---:|:-:|:-:|:-:|:-:|:-:|---:|"]
  for v in verdicts:
    c = v["conditions"]
    g = v["gaps"]["vs_dense_best"]
    ci = (f" [{100 * g['ci_low']:+.2f}, {100 * g['ci_high']:+.2f}]"
          if g.get("ci_low") is not None else "")
    row = [p for p in v.get("per_lr", []) if p["lr"] == v["lr"]]
    status = row[0].get("status", {}) if row else {}
    mark = lambda i: ("?" if status.get(i) == "open" else
                      "✓" if c[i] else "✗")
    conf = v.get("confidence") or {}
    agree = conf.get("agreement")
    lines.append(
        f"| {pct(v['sparsity'])} | **{v.get('outcome', v['class'])}** | "
        f"{v['class']} | {v.get('seeds', '—')} | "
        f"{'—' if agree is None else f'{100 * agree:.0f}%'} | {v['lr']:g} | "
        + " | ".join(mark(i) for i in "12345")
        + f" | {100 * g['gap']:+.2f}{ci} |")
  return "\n".join(lines)


def confidence_lines(verdicts: list[dict]) -> str:
  """One plain sentence per checked sparsity: how sure its verdict is."""
  return "\n".join(f"- {pct(v['sparsity'])}% sparsity ({v.get('seeds', '?')}"
                   f" seeds): {describe(v)}" for v in verdicts)


def sanity_accuracy_table(rows: list[dict], settings: list[str]) -> str:
  """Markdown: test accuracy per (lr, density) and setting."""
  head = "| lr | density (%) | " + " | ".join(settings) + " |"
  lines = [head, "|---:|---:|" + "---:|" * len(settings)]
  for r in rows:
    cells = [f"{pct(r[s]['mean'])} ± {pct(r[s]['std'])}" if s in r else "—"
             for s in settings]
    lines.append(f"| {r['lr']:g} | {pct(r['density'])} | " + " | ".join(cells)
                 + " |")
  return "\n".join(lines)


def selective_table(rows: list[dict], settings: list[str]) -> str:
  """Markdown: test AURC (x100, lower is better) per (lr, density) and
  setting: by the run's own selection score / by the softmax response."""
  head = "| lr | density (%) | " + " | ".join(settings) + " |"
  lines = [head, "|---:|---:|" + "---:|" * len(settings)]
  for r in rows:
    cells = [f"{100 * r[s]['aurc']['mean']:.2f} / "
             f"{100 * r[s]['aurc_softmax']['mean']:.2f}"
             if s in r else "—" for s in settings]
    lines.append(f"| {r['lr']:g} | {pct(r['density'])} | " + " | ".join(cells)
                 + " |")
  return "\n".join(lines)


def risk_table(rows: list[dict], coverages: list[float],
               settings: list[str]) -> str:
  """Markdown: the coverage-risk curve (test risk %, by the run's own
  selection score) of each setting, one row per (lr, density, setting)."""
  head = ("| lr | density (%) | setting | "
          + " | ".join(f"{100 * c:.0f}%" for c in coverages) + " |")
  lines = [head, "|---:|---:|:---|" + "---:|" * len(coverages)]
  for r in rows:
    for s in settings:
      if s in r:
        lines.append(f"| {r['lr']:g} | {pct(r['density'])} | {s} | "
                     + " | ".join(f"{100 * v:.1f}" for v in r[s]["risk"])
                     + " |")
  return "\n".join(lines)


def selective_section(summary: SanitySummary, levels: set[int],
                      settings: list[str]) -> list[str]:
  """The report's selective-classification section (none for a task
  without confidences)."""
  rows = [r for r in summary.selective if r["level"] in levels]
  if not rows:
    return []
  own = ("the abstain output (Deep Gamblers, payoff o = "
         f"{summary.task.get('payoff')})"
         if summary.selective_score == "abstain" else
         "the softmax response (largest class probability)")
  return ["## Selective classification: does the ticket know when it does "
          "not know?", "",
          f"Test examples answered most-confident first, ranked by {own}; "
          "the risk at coverage c is the error rate of the answered c. "
          "AURC = the mean risk over all coverages (Geifman et al. 2019; "
          "x100, lower is better; 0 for a perfect classifier). Cells: AURC "
          "by the run's own score / by the softmax response, means over "
          "round 0's seeds.", "",
          selective_table(rows, settings), "",
          "### Coverage-risk (test risk %, by the run's own score)", "",
          risk_table(rows, summary.coverages, settings), ""]


def plot_sanity(summary: SanitySummary, path: str) -> None:
  """Test accuracy vs. density per LR: a line with a seed band per setting,
  the dense net as a horizontal band."""
  lrs = summary.lrs
  fig, axes = plt.subplots(1, len(lrs), figsize=(5 * len(lrs), 4),
                           sharey=True, squeeze=False)
  for ax, lr in zip(axes[0], lrs):
    rows = [r for r in summary.rows if r["lr"] == lr and r["level"] > 0]
    for name, (color, style) in SETTING_STYLE.items():
      pts = [(r["density"], r[name]["mean"], r[name]["std"]) for r in rows
             if name in r]
      if not pts:
        continue
      d, m, s = (np.array(x) * 100 for x in zip(*pts))
      ax.plot(d, m, style, color=color, label=name, ms=4)
      ax.fill_between(d, m - s, m + s, color=color, alpha=0.15)
    dense = [r for r in summary.rows if r["lr"] == lr][0]["dense"]
    m, s = 100 * dense["mean"], 100 * dense["std"]
    ax.axhspan(m - s, m + s, color="gray", alpha=0.3, label="dense ± std")
    density_axis(ax)
    ax.set_title(f"lr = {lr:g}")
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_ylabel("test accuracy (%)")
  axes[0][-1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_accuracy_vs_lr(summary: SanitySummary, density: float, path: str) -> None:
  """Test accuracy vs. LR at one density, one line per setting."""
  rows = [r for r in summary.rows if abs(r["density"] - density) < 1e-9]
  fig, ax = plt.subplots(figsize=(5.5, 4))
  for name, (color, style) in list(SETTING_STYLE.items()) + [
      ("dense", ("k", "o-"))]:
    pts = [(r["lr"], r[name]["mean"], r[name]["std"]) for r in rows
           if name in r]
    if pts:
      lr, m, s = (np.array(x) for x in zip(*pts))
      ax.errorbar(lr, 100 * m, 100 * s, fmt=style, color=color, label=name,
                  ms=4, capsize=2)
  ax.set_xscale("log")
  ax.set_xticks(summary.lrs)
  ax.set_xticklabels([f"{lr:g}" for lr in summary.lrs])
  ax.minorticks_off()
  ax.set_xlabel("learning rate")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"density {100 * density:.1f}%")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def diagnostics_table(rows: list[dict]) -> str:
  lines = ["| lr | setting | density (%) | correlation | top overlap |",
           "|---:|:---|---:|---:|---:|"]
  for r in sorted(rows, key=lambda r: (r["lr"], r["level"])):
    c, o = r["mean_correlation"], r["mean_overlap"]
    lines.append(f"| {r['lr']:g} | {r['setting']} | {pct(r['density'])} | "
                 f"{c['mean']:.3f} ± {c['std']:.3f} | "
                 f"{o['mean']:.3f} ± {o['std']:.3f} |")
  return "\n".join(lines)


def write_sanity_report(wd: Workdir, summary: SanitySummary) -> None:
  """report.md with the verdict, accuracy tables and plots."""
  settings = ["ticket", "omp", "random_reinit", "small_dense", "random_prune",
              "shuffle", "smart_ratio", "dense"]
  checked = [r for r in summary.rows
             if any(v["level"] == r["level"] for v in summary.verdicts)]
  plot_sanity(summary, wd.file("sanity_accuracy_vs_density.png"))
  verdicts = summary.verdicts
  chosen = max((v for v in verdicts), key=lambda v: v["sparsity"])
  if any(v["conditions"]["1"] for v in verdicts):
    chosen = min((v for v in verdicts if v["conditions"]["1"]),
                 key=lambda v: v["sparsity"])
  plot_accuracy_vs_lr(summary, chosen["density"],
                      wd.file("sanity_accuracy_vs_lr.png"))
  crit = summary.criteria
  text = [f"# Sanity check: {summary.model} on {summary.dataset}", "",
          summary.conclusion, "",
          "## Verdict per sparsity", "",
          f"Conditions of Ma et al. (2021): 'similar' = within "
          f"{100 * crit['tolerance']:.1f} points, 'clearly' = by more than "
          f"{100 * crit['margin']:.1f} points, test accuracy means over "
          "the seeds of each sparsity; best LRs chosen on validation, "
          "except that condition 3 compares the ticket with its random "
          "re-initialization at every LR of the grid (Ma et al.: 'trained "
          "at any LR'), the closest one deciding.", "",
          verdict_table(verdicts), "",
          "### How sure each verdict is", "",
          "A condition is decided when the 95% Welch confidence interval of "
          "its gap lies wholly on one side of its threshold (✓/✗ above) and "
          "open (?) when it straddles it. The outcome is the class only if "
          "no open condition could change it, otherwise *inconclusive*; "
          "adaptive rounds (`sanity.max_seeds`, `sanity.seeds_per_round`) "
          "add seeds at inconclusive sparsities only. 'Resamples agreeing' "
          "is the share of seed bootstraps (seeds drawn with replacement, "
          "best LRs re-chosen each time) that give the same class.", "",
          confidence_lines(verdicts), "",
          "## Test accuracy (%) at the checked sparsities", "",
          sanity_accuracy_table(checked, settings), "",
          "![accuracy vs density](sanity_accuracy_vs_density.png)", "",
          "![accuracy vs lr](sanity_accuracy_vs_lr.png)", "",
          *selective_section(summary, {r["level"] for r in checked},
                             settings),
          "## Why it wins: weights remembered from initialization", "",
          "Mean over layers of the Pearson correlation between the rewind-"
          "point and trained weights (Liu et al. 2021) and of the overlap of "
          f"their top-{100 * summary.overlap_top:.0f}% magnitudes "
          "within the mask (Ma et al. 2021, App. G; independent orderings "
          "give the top fraction itself). High values at small LRs are the "
          "regime where tickets beat their re-initialization.", "",
          diagnostics_table(summary.diagnostics), "",
          "Ticket (IMP) accuracy at every level is in summary.json `rows`."]
  write_atomic(wd.file("report.md"), "\n".join(text))
