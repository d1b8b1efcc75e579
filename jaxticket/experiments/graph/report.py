"""The ``graph`` report: graph statistics; accuracy vs edge sparsity and vs
weight sparsity per method (UGS tickets, controls, random, spectral);
spectral gap vs edges deleted / added; accuracy, spectral gap and
Dirichlet energy per GNN depth for the spectrally modified graphs."""

from __future__ import annotations


from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import pct, plt
from jaxticket.experiments.summaries import GraphSummary

METHOD_NAMES = {
    "dense": "dense", "ugs": "UGS ticket",
    "ugs_reinit": "UGS masks, weights re-initialized",
    "ugs_shuffle": "UGS edges, weight mask shuffled per layer",
    "random": "random pruning (edges + weights)",
    "random_edges": "random edges, UGS weights",
    "spectral": "spectral edges (data-free), UGS weights"}
EDGE_METHODS = ("ugs", "random", "random_edges", "spectral")
WEIGHT_METHODS = ("ugs", "ugs_reinit", "ugs_shuffle", "random")
SPECTRAL_NAMES = {"original": "original graph",
                  "spectral_delete": "greedy deletion (max gap)",
                  "random_delete": "random deletion",
                  "spectral_add": "greedy addition (max gap)"}


def ci(stat: dict | None, scale: float = 100, digits: int = 1) -> str:
  if not stat or stat.get("mean") is None:
    return "—"
  half = stat.get("ci95")
  m = f"{scale * stat['mean']:.{digits}f}"
  return m if half is None else f"{m} ± {scale * half:.{digits}f}"


def graphs_table(summary: GraphSummary) -> str:
  lines = ["| graph | nodes | edges | classes | features | edge homophily "
           "| components | spectral gap | deletable edges |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for g in summary.graphs:
    lines.append(f"| {g['graph']} | {g['nodes']} | {g['edges']} | "
                 f"{g['classes']} | {g['features']} | "
                 f"{g['homophily']:.3f} | {g['components']} | "
                 f"{g['spectral_gap']:.4f} | {g['max_deletable']} |")
  return "\n".join(lines)


def tickets_table(summary: GraphSummary, graph: str, model: str) -> str:
  rows = [r for r in summary.tickets if r["graph"] == graph and
          r["model"] == model]
  lines = ["| round | setting | edges left (%) | weights left (%) | "
           "spectral gap | components | test acc (%) at best val |",
           "|---:|---|---:|---:|---:|---:|---:|"]
  for r in sorted(rows, key=lambda r: (r["round"], r["setting"] != "ugs",
                                       r["setting"])):
    lines.append(f"| {r['round']} | {r['setting']} | "
                 f"{pct(r['edge_density'])} | {pct(r['weight_density'])} | "
                 f"{r['spectral_gap']:.4f} | {r['components']:.1f} | "
                 f"{ci(r['test_accuracy'])} |")
  return "\n".join(lines)


def spectral_table(summary: GraphSummary, graph: str, model: str) -> str:
  rows = [r for r in summary.spectral if r["graph"] == graph and
          r["model"] == model]
  lines = ["| depth | edges | fraction (%) | edges in graph | spectral gap | "
           "test acc (%) | Dirichlet energy / N | Rayleigh quotient |",
           "|---:|---|---:|---:|---:|---:|---:|---:|"]
  for r in sorted(rows, key=lambda r: (r["depth"], r["setting"],
                                       r["fraction"])):
    lines.append(f"| {r['depth']} | {r['setting']} | "
                 f"{pct(r['fraction'])} | {r['edges']:.0f} | "
                 f"{r['spectral_gap']:.4f} | {ci(r['test_accuracy'])} | "
                 f"{ci(r['dirichlet'], 1, 4)} | {ci(r['rayleigh'], 1, 4)} |")
  return "\n".join(lines)


def _pairs(summary: GraphSummary, key: str) -> list[tuple[str, str]]:
  return sorted({(r["graph"], r["model"]) for r in summary[key]})


def _axes(n: int, width: float = 4.2, height: float = 3.4):
  cols = min(n, 3)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows),
                           squeeze=False)
  for ax in axes.ravel()[n:]:
    ax.set_visible(False)
  return fig, axes.ravel()


def plot_accuracy(summary: GraphSummary, path: str, axis: str,
                  methods: tuple[str, ...]) -> None:
  """Test accuracy vs edge (or weight) density, one panel per (graph,
  model), one line per method, the dense net as a band."""
  pairs = _pairs(summary, "tickets")
  fig, axes = _axes(len(pairs))
  for ax, (graph, model) in zip(axes, pairs):
    rows = [r for r in summary.tickets if r["graph"] == graph and
            r["model"] == model]
    dense = [r for r in rows if r["setting"] == "dense"]
    for m in methods:
      pts = sorted((r for r in rows if r["setting"] == m),
                   key=lambda r: -r[axis])
      if not pts:
        continue
      pts = dense + pts
      x = [100 * r[axis] for r in pts]
      y = [100 * r["test_accuracy"]["mean"] for r in pts]
      e = [100 * (r["test_accuracy"]["sem"] or 0) for r in pts]
      ax.errorbar(x, y, yerr=e, marker="o", ms=3, capsize=2,
                  label=METHOD_NAMES[m])
    ax.invert_xaxis()
    ax.set_title(f"{graph} ({model})", fontsize=9)
    ax.set_xlabel(("edges" if axis == "edge_density" else "weights")
                  + " remaining (%)")
    ax.set_ylabel("test accuracy (%), mean ± s.e.m.")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_gaps(summary: GraphSummary, path: str) -> None:
  """Spectral gap vs edges deleted (greedy, random) and added (greedy)."""
  names = list(summary.gap_curves)
  fig, axes = _axes(len(names))
  for ax, name in zip(axes, names):
    c = summary.gap_curves[name]
    ax.plot(c["delete"]["changed"], c["delete"]["gaps"], "o-", ms=2,
            label="greedy deletion (proxy, max gap)")
    for i, r in enumerate(c["random"]):
      ax.plot(r["changed"], r["gaps"], "s:", ms=2, color="gray",
              label="random deletion" if i == 0 else None)
    ax.plot(c["add"]["changed"], c["add"]["gaps"], "^--", ms=2,
            label="greedy addition (edges added)")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("edges deleted / added")
    ax.set_ylabel("spectral gap λ₁")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_depth(summary: GraphSummary, path: str) -> None:
  """Rayleigh quotient (normalized Dirichlet energy) and test accuracy vs
  depth per edge setting, one column per (graph, model)."""
  pairs = _pairs(summary, "spectral")
  fig, axes = plt.subplots(2, len(pairs), figsize=(4.2 * len(pairs), 6.2),
                           squeeze=False)
  for col, (graph, model) in enumerate(pairs):
    rows = [r for r in summary.spectral if r["graph"] == graph and
            r["model"] == model]
    combos = sorted({(r["setting"], r["fraction"]) for r in rows})
    for setting, f in combos:
      pts = sorted((r for r in rows if (r["setting"], r["fraction"]) ==
                    (setting, f)), key=lambda r: r["depth"])
      d = [r["depth"] for r in pts]
      label = SPECTRAL_NAMES[setting] + (f" {100 * f:g}%" if f else "")
      style = {"original": "k-", "spectral_delete": "-",
               "random_delete": ":", "spectral_add": "--"}[setting]
      axes[0, col].plot(d, [r["rayleigh"]["mean"] for r in pts], style,
                        marker="o", ms=3, label=label)
      axes[1, col].plot(d, [100 * r["test_accuracy"]["mean"] for r in pts],
                        style, marker="o", ms=3, label=label)
    axes[0, col].set_yscale("log")
    axes[0, col].set_title(f"{graph} ({model})", fontsize=9)
    axes[0, col].set_ylabel("Dirichlet energy / ||H||² (last hidden)")
    axes[1, col].set_ylabel("test accuracy (%)")
    for ax in axes[:, col]:
      ax.set_xlabel("GNN depth")
      ax.grid(alpha=0.3)
  axes[0, 0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def findings(summary: GraphSummary) -> list[str]:
  """One line per (graph, model): the deepest round's UGS ticket against
  the dense net, random pruning and the spectral edges."""
  out = []
  for graph, model in _pairs(summary, "tickets"):
    rows = {(r["setting"], r["round"]): r for r in summary.tickets
            if r["graph"] == graph and r["model"] == model}
    last = summary.rounds
    dense = rows.get(("dense", 0))
    parts = [f"dense {ci(dense['test_accuracy'])}%"] if dense else []
    for m in ("ugs", "random", "spectral"):
      r = rows.get((m, last))
      if r:
        parts.append(f"{m} {ci(r['test_accuracy'])}%")
    if len(parts) > 1:
      r = rows.get(("ugs", last)) or rows.get(("random", last))
      out.append(f"- {graph} ({model}), round {last} ({pct(r['edge_density'])}"
                 f"% edges, {pct(r['weight_density'])}% weights left): "
                 + ", ".join(parts) + ".")
  return out


def _setting(r: dict) -> str:
  return r["setting"] + (f" {100 * r['fraction']:g}%" if r["fraction"]
                         else "")


def console_text(summary: GraphSummary) -> str:
  lines = [graphs_table(summary)]
  if summary.tickets:
    lines += ["", "Tickets (test accuracy at best validation, mean ± 95% CI "
              "over splits x seeds):"] + findings(summary)
  for graph, model in _pairs(summary, "spectral"):
    rows = [r for r in summary.spectral if r["graph"] == graph and
            r["model"] == model and r["depth"] == min(
                x["depth"] for x in summary.spectral)]
    lines.append(f"spectral {graph} ({model}), depth {rows[0]['depth']}: "
                 + ", ".join(
                     f"{_setting(r)} gap {r['spectral_gap']:.3f} acc "
                     f"{ci(r['test_accuracy'])}%" for r in sorted(
                         rows, key=lambda r: (r["setting"], r["fraction"]))))
  return "\n".join(lines)


def write_report(wd: Workdir, summary: GraphSummary) -> None:
  """report.md, accuracy_vs_edges.png, accuracy_vs_weights.png,
  spectral_gap.png, depth.png."""
  text = ["# graph: lottery tickets of GNNs and spectral edge pruning", "",
          f"Models {', '.join(summary.models)}; {summary.splits} "
          f"{summary.split} node split(s) x seeds {summary.seeds}. Accuracies"
          " are the test accuracy at the evaluation with the best validation "
          "accuracy (UGS's protocol), mean ± 95% t-interval over splits x "
          "seeds.", "", "## Graphs", "", graphs_table(summary), ""]
  if summary.tickets:
    plot_accuracy(summary, wd.file("accuracy_vs_edges.png"), "edge_density",
                  EDGE_METHODS)
    plot_accuracy(summary, wd.file("accuracy_vs_weights.png"),
                  "weight_density", WEIGHT_METHODS)
    text += [
        "## Graph lottery tickets (UGS)", "",
        f"{summary.rounds} rounds, each pruning {pct(summary.edge_fraction)}%"
        f" of the remaining edges and {pct(summary.weight_fraction)}% of the "
        "remaining weights; every mask trained from theta_0 with the masks "
        "frozen. Settings: " + "; ".join(
            f"`{m}`: {METHOD_NAMES[m]}" for m in ["dense"] + summary.methods)
        + ". The spectral gap and components are those of the graph of the "
        "kept edges (largest component).", ""] + findings(summary) + [""]
    for graph, model in _pairs(summary, "tickets"):
      text += [f"### {graph} ({model})", "", tickets_table(summary, graph,
                                                           model), ""]
    text += ["![accuracy vs edges](accuracy_vs_edges.png)", "",
             "![accuracy vs weights](accuracy_vs_weights.png)", ""]
  if summary.gap_curves:
    plot_gaps(summary, wd.file("spectral_gap.png"))
    text += ["## Spectral gap vs edges deleted / added", "",
             "Greedy steps by the first-order proxy, the exact gap "
             "recomputed after every `update_every` edges "
             "(" + ", ".join(f"{k}: {v['update_every']}" for k, v in
                             summary.gap_curves.items()) + "); deletions "
             "never disconnect the graph.", "",
             "![spectral gap](spectral_gap.png)", ""]
  if summary.spectral:
    plot_depth(summary, wd.file("depth.png"))
    text += ["## Spectral pruning: accuracy and over-smoothing vs depth", "",
             "Dense weights; only the edges differ. Dirichlet energy of the "
             "last hidden layer H on the original graph's self-looped "
             "normalized Laplacian (per node, and relative to ||H||²: the "
             "Rayleigh quotient, in [0, 2]); smaller = smoother.", ""]
    for graph, model in _pairs(summary, "spectral"):
      text += [f"### {graph} ({model})", "", spectral_table(summary, graph,
                                                            model), ""]
    text += ["![depth](depth.png)", ""]
  text.append(f"Wall time {summary.wall_time_s:.0f} s (per stage: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in
                          summary.timings_s.items()) + ").")
  write_atomic(wd.file("report.md"), "\n".join(text) + "\n")


__all__ = ["write_report", "console_text", "graphs_table", "tickets_table",
           "spectral_table"]
