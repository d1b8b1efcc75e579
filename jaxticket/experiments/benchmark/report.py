"""``benchmark``'s report.md and plots, from its summary only."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import density_axis, fmt, plt
from jaxticket.experiments.summaries import BenchmarkSummary


def dataset_table(summary: BenchmarkSummary) -> str:
  """Per dataset: accuracy (mean over densities and seeds), rank and its
  bootstrap CI, and how often the method ranks first."""
  lines = ["| dataset | method | test acc (%) | rank | rank CI | P(best) |",
           "|---|---|---|---|---|---|"]
  for block in summary.dataset_ranks:
    for r in sorted(block["rows"], key=lambda r: r["rank"]):
      lines.append(f"| {block['dataset']} | {r['method']} | "
                   f"{fmt(r['accuracy'])} | {r['rank']:g} | "
                   f"[{r['rank_lo']:g}, {r['rank_hi']:g}] | "
                   f"{r['p_best']:.2f} |")
  return "\n".join(lines)


def aggregation_table(summary: BenchmarkSummary) -> str:
  """Per method: every aggregation's value (its rank) and the softmax
  AURC (the selective column: lower = better risk at every coverage)."""
  aggs = list(summary.aggregations)
  aurc = {s["method"]: s["aurc_softmax"] for s in summary.selective}
  abstain = {s["method"]: s["aurc_abstain"] for s in summary.selective
             if "aurc_abstain" in s}
  head = "| method | " + " | ".join(a.replace("_", " ") for a in aggs) + \
      " | AURC softmax (%) |" + (" AURC abstain (%) |" if abstain else "")
  lines = [head, "|---" * (len(aggs) + 2 + bool(abstain)) + "|"]
  for m in summary.methods:
    cells = []
    for a in aggs:
      v, r = summary.aggregations[a][m], summary.aggregation_ranks[a][m]
      shown = fmt(v) if a.endswith("accuracy") else f"{v:g}"
      cells.append(f"{shown} ({r:g})")
    extra = f" {fmt(abstain[m])} |" if abstain else ""
    lines.append(f"| {m} | " + " | ".join(cells) + f" | {fmt(aurc[m])} |"
                 + extra)
  return "\n".join(lines)


def abstain_note(summary: BenchmarkSummary) -> str:
  """The abstain column's line, when the nets were trained with the
  gambler's loss (Liu et al. 2019, Sec. 4: rank by the abstain output)."""
  if not any("aurc_abstain" in s for s in summary.selective):
    return ""
  return ("\nAURC abstain: the same area, ranking by the abstain output "
          "(lowest first; the nets were trained with `task.loss=gambler`, "
          "Liu et al. 2019).")


def tau_table(names: list[str], tau: list[list[float | None]]) -> str:
  lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
  for n, row in zip(names, tau):
    lines.append(f"| {n} | " + " | ".join(
        "—" if x is None else f"{x:.2f}" for x in row) + " |")
  return "\n".join(lines)


def flips_table(summary: BenchmarkSummary) -> str:
  rows = [f for f in summary.leave_one_out
          if f["winner_flips"] or f["pair_flips"]]
  if not rows:
    return "No conclusion changes when one dataset is left out."
  sign = {1: ">", -1: "<", 0: "="}
  lines = ["| left out | aggregation | winner (all) | winner (without) | "
           "pair orders that change |", "|---|---|---|---|---|"]
  for f in rows:
    pairs = ", ".join(f"{a} {sign[p['full']]} {b} -> {a} "
                      f"{sign[p['without']]} {b}"
                      for p in f["pair_flips"] for a, b in [p["pair"]])
    lines.append(f"| {f['left_out']} | {f['aggregation']} | "
                 f"{' = '.join(f['winner_full'])} | "
                 f"{' = '.join(f['winner_without'])}"
                 f"{' (flips)' if f['winner_flips'] else ''} | "
                 f"{pairs or '—'} |")
  return "\n".join(lines)


def plot_heatmap(summary: BenchmarkSummary, path: str) -> None:
  """Ranks (1 = best) per method x dataset, and the mean rank."""
  ranks = np.array([[next(r["rank"] for r in b["rows"] if r["method"] == m)
                     for b in summary.dataset_ranks]
                    for m in summary.methods])
  cols = summary.datasets + ["mean rank"]
  full = np.concatenate([ranks, ranks.mean(1, keepdims=True)], 1)
  fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 2,
                                  0.5 * len(summary.methods) + 1.5))
  im = ax.imshow(full, cmap="viridis_r", aspect="auto")
  for i in range(full.shape[0]):
    for j in range(full.shape[1]):
      light = full[i, j] <= (full.min() + full.max()) / 2  # yellow end
      ax.text(j, i, f"{full[i, j]:g}", ha="center", va="center",
              color="k" if light else "w", fontsize=9)
  ax.set_xticks(range(len(cols)))
  ax.set_xticklabels(cols, rotation=20)
  ax.set_yticks(range(len(summary.methods)))
  ax.set_yticklabels(summary.methods)
  fig.colorbar(im, ax=ax, label="rank (1 = best)")
  ax.set_title("benchmark lottery: rank per dataset")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_accuracy(summary: BenchmarkSummary, path: str) -> None:
  """Test accuracy vs density, one panel per dataset (dense: dashed)."""
  n = len(summary.datasets)
  fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.8), squeeze=False)
  for ax, d in zip(axes[0], summary.datasets):
    for i, m in enumerate(summary.methods):
      cells = sorted((c for c in summary.cells
                      if c["method"] == m and c["dataset"] == d),
                     key=lambda c: -c["density"])
      acc = [np.nanmean(np.asarray(c["test"], np.float64)) * 100
             for c in cells]
      ax.plot([c["density"] * 100 for c in cells], acc, "o-",
              color=f"C{i % 10}", label=m)
    dense = [x for x in summary.dense if x["dataset"] == d]
    if dense:
      ax.axhline(np.nanmean(np.asarray(dense[0]["test"], np.float64)) * 100,
                 color="gray", ls="--", lw=1, label="dense")
    density_axis(ax)
    ax.set_title(d)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, which="both")
  axes[0][0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_benchmark_report(wd: Workdir, summary: BenchmarkSummary) -> None:
  plot_heatmap(summary, wd.file("rank_heatmap.png"))
  plot_accuracy(summary, wd.file("accuracy_vs_density.png"))
  recipes = "\n".join(
      f"| {r['dataset']} | {r.get('optimizer', '')} | {r['lr']:g} | "
      + ", ".join(
          f"{k}: {fmt(v)}" for k, v in r["val"].items()) + " |"
      for r in summary.recipes)
  dens = ", ".join(f"{100 * d:.3g}%" for d in summary.densities)
  text = f"""# Benchmark lottery: {', '.join(summary.methods)}

Model {summary.model}; datasets {', '.join(summary.datasets)}; densities
{dens} (every method the same); seeds {summary.seeds}. A cell's score is
its test accuracy averaged over the densities; ranks 1 = best, ties share
their average rank; rank CIs are paired bootstrap percentiles over seeds
(Dehghani et al. 2021, "The Benchmark Lottery").

{summary.conclusion}

## Recipe per dataset (dense LR picked on validation)

| dataset | optimizer | lr | dense val acc (%) per lr |
|---|---|---|---|
{recipes}

## Per-dataset ranks

{dataset_table(summary)}

![rank heat map](rank_heatmap.png)

## Aggregations (value and rank) and the selective column

{aggregation_table(summary)}

AURC: area under the coverage-risk curve from the softmax confidence
(core/selective.py), mean over datasets, densities and seeds; lower is
better.{abstain_note(summary)}

## Kendall tau-b between the datasets' rankings

{tau_table(summary.datasets, summary.tau_datasets)}

## Kendall tau-b between the aggregations' rankings

{tau_table(list(summary.aggregations), summary.tau_aggregations)}

## Leave one dataset out

{flips_table(summary)}

![accuracy vs density](accuracy_vs_density.png)

Sub-runs: {', '.join(f"`{s['workdir']}`" for s in summary.subruns)}.
Wall time {summary.wall_time_s:.0f} s.
"""
  write_atomic(wd.file("report.md"), text)
