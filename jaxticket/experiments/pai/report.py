"""The ``pai`` report: accuracy vs density per method, Su et al.'s checks,
Ma et al.'s verdicts, per-layer densities and the layer-collapse plot; read
from the typed summary only."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import density_axis, fmt, mean_std, pct, plt
from jaxticket.experiments.summaries import PaiSummary

CHECK_NAMES = {"shuffle": "layer-wise shuffle", "reinit": "re-initialized",
               "random_labels": "random labels",
               "shuffled_pixels": "shuffled pixels + random labels",
               "half_data": "half the data"}


def accuracy_table(summary: PaiSummary) -> str:
  """Markdown: test accuracy (%) of every method's mask per density."""
  dens = summary.densities
  head = "| method | " + " | ".join(f"{100 * d:g}%" for d in dens) + " |"
  lines = [head, "|---|" + "---:|" * len(dens)]
  for m in summary.methods:
    cells = []
    for d in dens:
      row = next((r for r in summary.rows
                  if r["method"] == m and r["density"] == d), None)
      if row is None:
        cells.append("can't build")
        continue
      st = row["settings"].get("pai")
      cell = mean_std(st["test"]) if st else "—"
      cells.append(cell + (" (collapsed)" if row["collapsed"] else ""))
    lines.append(f"| {m} | " + " | ".join(cells) + " |")
  if summary.dense:
    lines.append("| dense (100%) | " + " | ".join(
        [mean_std(summary.dense["test"])] * len(dens)) + " |")
  return "\n".join(lines)


def checks_table(summary: PaiSummary) -> str:
  """Markdown: per (method, density) the mask's accuracy minus each
  check's, with its Welch CI; bold = the mask is clearly better."""
  checks = summary.checks_run
  lines = ["| method | density (%) | mask test acc (%) | " +
           " | ".join(f"- {CHECK_NAMES.get(c, c)}" for c in checks) + " |",
           "|---|---:|---:|" + "---:|" * len(checks)]
  for r in summary.rows:
    st = r["settings"].get("pai")
    cells = []
    for c in checks:
      g = next((x for x in summary.checks if x["method"] == r["method"]
                and x["density"] == r["density"] and x["check"] == c), None)
      if g is None:
        cells.append("n/a")
        continue
      text = fmt(g["gap"], signed=True)
      if g["ci_low"] is not None:
        text += f" [{fmt(g['ci_low'], signed=True)}, " \
                f"{fmt(g['ci_high'], signed=True)}]"
      decided = g.get("status", "holds") == "holds"
      cells.append(f"**{text}**" if g["mask_better"] and decided else
                   f"{text}°" if g["mask_better"] else text)
    lines.append(f"| {r['method']} | {pct(r['density'])} | "
                 f"{mean_std(st['test']) if st else '—'} | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def su_table(summary: PaiSummary) -> str:
  """Markdown: per method, where its mask carries information beyond its
  layer-wise densities and beyond the data."""
  def where(v, free=False, decided=None):
    if v is None:
      return "data-free" if free else "not checked"
    noisy = lambda d: decided is not None and d not in decided
    return ", ".join(f"{100 * d:g}%" + ("°" if noisy(d) else "")
                     for d in v) if v else "nowhere"
  lines = ["| method | beats its layer-wise shuffle at | beats its "
           "re-initialization at | beats every corrupted-data mask at |",
           "|---|---|---|---|"]
  for r in summary.su:
    shuffle = where(r["beyond_layer_densities"], False,
                    r.get("beyond_layer_densities_decided"))
    lines.append(f"| {r['method']} | {shuffle} | "
                 f"{where(r['init_matters'])} | "
                 f"{where(r['uses_data'], not r['data_dependent'])} |")
  return "\n".join(lines)


def verdict_table(summary: PaiSummary) -> str:
  lines = ["| method | density (%) | verdict (point) | outcome (95% CIs) | "
           "bootstrap agreement | 1 | 2 | 3 | 4 | 5 |",
           "|---|---:|---|---|---:|:-:|:-:|:-:|:-:|:-:|"]
  mark = lambda b: "✓" if b else "✗"
  for v in summary.verdicts:
    c = v["conditions"]
    outcome = v.get("outcome", v["class"])
    if outcome == "inconclusive":
      outcome += f" ({' or '.join(v.get('possible', []))})"
    agree = v.get("agreement")
    lines.append(f"| {v['method']} | {pct(v['density'])} | **{v['class']}** "
                 f"| {outcome} | "
                 f"{'—' if agree is None else f'{100 * agree:.0f}%'} | "
                 + " | ".join(mark(c[k]) for k in "12345") + " |")
  return "\n".join(lines)


def collapse_table(summary: PaiSummary) -> str:
  lines = ["| method | largest compression with every layer kept (grid) | "
           "trained densities with a layer pruned away |", "|---|---:|---|"]
  for c in summary.collapse:
    safe = c["largest_compression_without_collapse"]
    lines.append(f"| {c['method']} | "
                 f"{'—' if safe is None else f'{safe:.3g}x'} | "
                 + (", ".join(f"{100 * d:g}%" for d in
                              c["collapsed_at_trained_densities"]) or "none")
                 + " |")
  return "\n".join(lines)


def layers_table(summary: PaiSummary) -> str:
  """Markdown: per-layer densities (%) of every mask (mean over seeds)."""
  names = list(summary.rows[0]["layer_densities"]) if summary.rows else []
  short = [n.rsplit("/", 1)[0] for n in names]
  lines = ["| method | density (%) | " + " | ".join(short) + " |",
           "|---|---:|" + "---:|" * len(names)]
  for r in summary.rows:
    lines.append(f"| {r['method']} | {pct(r['density'])} | " + " | ".join(
        pct(r["layer_densities"][n]) for n in names) + " |")
  return "\n".join(lines)


def plot_accuracy(summary: PaiSummary, path: str) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for i, m in enumerate(summary.methods):
    rows = sorted((r for r in summary.rows if r["method"] == m),
                  key=lambda r: -r["density"])
    d = np.array([r["density"] for r in rows]) * 100
    acc = np.array([r["settings"]["pai"]["test"]["mean"] for r in rows]) * 100
    ax.plot(d, acc, "o-", color=f"C{i % 10}", label=m)
    sh = [r["settings"].get("shuffle") for r in rows]
    if all(sh):
      ax.plot(d, [s["test"]["mean"] * 100 for s in sh], ":",
              color=f"C{i % 10}", alpha=0.7)
  if summary.imp:
    rows = sorted(summary.imp["rows"], key=lambda r: -r["density"])
    ax.plot([r["density"] * 100 for r in rows],
            [r["test_accuracy"]["mean"] * 100 for r in rows], "k^--",
            label="IMP ticket")
  if summary.dense:
    ax.axhline(summary.dense["test"]["mean"] * 100, color="gray", ls="--",
               lw=1, label="dense")
  density_axis(ax)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"{summary.model} on {summary.dataset}: pruning at init "
               "(dotted: layer-wise shuffle)")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_collapse(summary: PaiSummary, path: str) -> None:
  """Smallest layer density vs compression per method (Tanaka et al.'s
  layer collapse: the curve drops to zero where a layer is pruned away)."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for i, m in enumerate(summary.methods):
    rows = sorted((r for r in summary.collapse_grid if r["method"] == m),
                  key=lambda r: r["compression"])
    if not rows:
      continue
    c = [r["compression"] for r in rows]
    v = [max(r["min_layer_density"], 1e-7) * 100 for r in rows]
    ax.plot(c, v, "o-", color=f"C{i % 10}", label=m)
    bad = [(x, y) for x, y, r in zip(c, v, rows) if r["collapsed"]]
    if bad:
      ax.plot(*zip(*bad), "x", color=f"C{i % 10}", ms=9)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("compression (total / kept weights)")
  ax.set_ylabel("smallest layer density (%)")
  ax.set_title("layer collapse: smallest layer density over layers and "
               "seeds (x: a layer pruned away)", fontsize=10)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_pai_report(wd: Workdir, summary: PaiSummary) -> None:
  plot_accuracy(summary, wd.file("pai_accuracy.png"))
  if summary.collapse_grid:
    plot_collapse(summary, wd.file("pai_collapse.png"))
  imp = ""
  if summary.imp:
    imp = (f"\nIMP reference: `{summary.imp['source']}` (black triangles "
           "in the plot).\n")
  small = ""
  if summary.small_dense:
    small = "\n".join(
        ["\n## Small-dense references (Ma et al.'s condition 2)\n",
         "| density (%) | width | weights | test acc (%) |",
         "|---:|---:|---:|---:|"] +
        [f"| {100 * float(d):g} | {v['width']:.3f} | {v['weights']} | "
         f"{mean_std(v['test'])} |" for d, v in summary.small_dense.items()])
  text = f"""# Pruning at initialization: {summary.model} on {summary.dataset}

{summary.conclusion}

Seeds {summary.seeds}, learning rate {summary.lr:g}; masks train from the
{'weights the scores saw' if summary.init == 'scored' else 'a fresh initialization (snip-public)'};
{summary.replicas_trained} replicas trained. Wall time {summary.wall_time_s:.0f} s.
{imp}
![accuracy](pai_accuracy.png)

## Test accuracy (%) of every method's mask

{accuracy_table(summary)}

## Su et al.'s checks: mask minus check (points, 95% Welch CI)

Bold: the mask is clearly better (its 95% CI lies above
{100 * summary.criteria['margin']:.1f} points); ° : better by more than that
in the mean, but the CI reaches below it (within the seeds' noise). A mask that does not beat its
layer-wise shuffle carries no information beyond its layer densities; one
that does not beat its corrupted-data versions uses no information from
the data.

{checks_table(summary)}

{su_table(summary)}

## Ma et al.'s conditions on every mask

Ticket = the method's mask, random re-initialization = the `reinit` check.

{verdict_table(summary) if summary.verdicts else 'Not judged (needs pai.small_dense and the reinit check).'}
{small}

## Layer collapse (Tanaka et al. 2020)

{collapse_table(summary)}

{'![collapse](pai_collapse.png)' if summary.collapse_grid else ''}

## Per-layer densities (%) of every mask (mean over seeds)

{layers_table(summary)}
"""
  write_atomic(wd.file("report.md"), text)
