"""The elastic-ticket report: accuracy vs density per method and target
depth (table and plot), barriers to the target's IMP ticket."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import density_axis, pct, plt
from jaxticket.experiments.summaries import ElasticSummary

LABELS = {"elastic": "transformed ticket (E-LTH)",
          "shuffle": "transformed mask shuffled in layers",
          "copy_shuffle": "copies' masks shuffled in layers",
          "random": "random at its layer densities",
          "pai": "pruning at init", "imp": "IMP on the target",
          "twin": "transformed ticket, other data order",
          "dense": "dense target"}


def _ci(stat: dict) -> str:
  lo, hi = stat.get("ci_low"), stat.get("ci_high")
  band = "" if lo is None else f" [{pct(lo)}, {pct(hi)}]"
  return f"{pct(stat['mean'])} ± {pct(stat['std'])}{band}"


def label(summary: ElasticSummary, method: str) -> str:
  text = LABELS.get(method, method)
  return f"{text} ({summary.pai_method})" if method == "pai" else text


def table(summary: ElasticSummary) -> str:
  """Markdown table: depth, method, level, density, test/val accuracy."""
  lines = ["| depth | method | level | density (%) | test acc (%) "
           "mean ± std [95% CI] | val acc (%) |",
           "|---:|---|---:|---:|---:|---:|"]
  for r in summary.rows:
    lines.append(
        f"| {r['depth']} | {label(summary, r['method'])} | {r['level']} | "
        f"{pct(r['density'])} | {_ci(r['test_accuracy'])} | "
        f"{pct(r['val_accuracy']['mean'])} |")
  return "\n".join(lines)


def barrier_table(summary: ElasticSummary) -> str:
  """Barriers (error fractions as %) to the target IMP ticket and to the
  transformed ticket's twin (another data order)."""
  show = lambda s: "—" if s is None else _ci(s)
  lines = ["| depth | level | to IMP ticket: test (%) [95% CI] | train (%) "
           "| to its twin: test (%) | train (%) |",
           "|---:|---:|---:|---:|---:|---:|"]
  for b in summary.barriers:
    lines.append(
        f"| {b['depth']} | {b['level']} | {show(b.get('test_barrier'))} | "
        f"{show(b.get('train_barrier'))} | "
        f"{show(b.get('twin_test_barrier'))} | "
        f"{show(b.get('twin_train_barrier'))} |")
  return "\n".join(lines)


def plot(summary: ElasticSummary, path: str) -> None:
  """Test accuracy vs density, one panel per target depth, a line per
  method (mean over seeds, bars = 95% CI)."""
  depths = [t["depth"] for t in summary.targets]
  fig, axes = plt.subplots(1, len(depths), figsize=(5.5 * len(depths), 4),
                           squeeze=False)
  for ax, depth in zip(axes[0], depths):
    rows = [r for r in summary.rows if r["depth"] == depth]
    for method in dict.fromkeys(r["method"] for r in rows):
      mine = sorted((r for r in rows if r["method"] == method),
                    key=lambda r: -r["density"])
      d = np.array([r["density"] for r in mine]) * 100
      m = np.array([r["test_accuracy"]["mean"] for r in mine], float) * 100
      lo = np.array([r["test_accuracy"]["ci_low"] or r["test_accuracy"][
          "mean"] for r in mine], float) * 100
      hi = np.array([r["test_accuracy"]["ci_high"] or r["test_accuracy"][
          "mean"] for r in mine], float) * 100
      if method == "dense":
        ax.axhline(m[0], color="gray", ls="--", lw=1, label=label(
            summary, method))
        continue
      lo, hi = np.maximum(lo, 0), np.minimum(hi, 100)  # accuracy bounds
      ax.errorbar(d, m, yerr=[m - lo, hi - m], marker="o", capsize=3,
                  label=label(summary, method))
    density_axis(ax)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{summary.model} depth {summary.source_depth} -> {depth}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_report(wd: Workdir, summary: ElasticSummary) -> None:
  plot(summary, wd.file("elastic_accuracy.png"))
  maps = "\n".join(f"- depth {t['depth']} ({t['blocks_per_stage']} blocks "
                   f"per stage x {t['stages']} stages): mapping "
                   f"`{t['mapping']}` ({t['replicas']} replicas, one "
                   "program)" for t in summary.targets)
  src = "\n".join(f"| {r['level']} | {pct(r['density'])} | "
                  f"{_ci(r['test_accuracy'])} |" for r in summary.source)
  text = f"""# Elastic lottery tickets: {summary.model} on {summary.dataset}

Source: IMP on depth {summary.source_depth}
({summary.source_blocks_per_stage} blocks per stage), rewind
`{summary.rewind}` (step {summary.rewind_step}); seeds {summary.seeds}.
Levels carried: {summary.levels}; strategy `{summary.strategy}`.
Wall time {summary.wall_time_s:.1f} s (source IMP {summary.source_imp_s:.1f}
s; per target: {"; ".join(f"depth {t['depth']} " + ", ".join(
    f"{k[:-2]} {v:.0f} s" for k, v in t.get("timings_s", {}).items())
    for t in summary.targets)}).

{maps}

Methods: the transformed ticket (mask and rewind weights carried by the
mapping, trained from the source's rewind step with its recipe); its mask
shuffled within every layer on the same weights; random masks with its
per-layer counts on the target's own theta_0; {summary.pai_method} at its
density on the target's theta_0; IMP run directly on the target.

![accuracy vs density](elastic_accuracy.png)

{table(summary)}

## Error barriers of the transformed ticket

To the target's IMP ticket of the same level and seed: the two start from
different initializations (the carried source weights vs the target's own
theta_0), so permutation symmetry alone can make this barrier large; a
small one would mean the two land in one basin. To its twin (the same
ticket trained with another data order): the authors' stability check, ~0
when the ticket is stable to SGD noise.

{barrier_table(summary) if summary.barriers else "(no target IMP run)"}

## Source IMP ticket

| level | density (%) | test acc (%) mean ± std [95% CI] |
|---:|---:|---:|
{src}
"""
  write_atomic(wd.file("report.md"), text)


__all__ = ["table", "barrier_table", "plot", "write_report"]
