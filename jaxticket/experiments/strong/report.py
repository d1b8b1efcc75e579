"""The ``strong`` report: edge-popup accuracy vs width and vs density next
to the trained references; the construction's error vs over-
parameterization next to the subset-sum counting limit."""

from __future__ import annotations

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import mean_std, pct, plt
from jaxticket.experiments.summaries import StrongSummary

RULE_NAMES = {"layerwise": "edge-popup, top-k per layer",
              "global": "edge-popup, global top-k",
              "units": "structured, top-k units per layer"}


def edge_popup_table(summary: StrongSummary) -> str:
  lines = ["| rule | width | k kept (%) | weights used (%) | units kept (%) "
           "| test acc (%) | val acc (%) |", "|---|---:|---:|---:|---:|---:|---:|"]
  for r in summary.edge_popup:
    lines.append(f"| {r['rule']} | {r['width']:g} | {pct(r['keep'])} | "
                 f"{pct(r['density'])} | {pct(r['units'])} | "
                 f"{mean_std(r['test_accuracy'])} | "
                 f"{mean_std(r['val_accuracy'])} |")
  return "\n".join(lines)


def reference_table(summary: StrongSummary) -> str:
  lines = ["| width | trained | weights (%) | test acc (%) |",
           "|---:|---|---:|---:|"]
  for r in summary.references:
    what = "dense" if r["level"] == 0 else f"IMP level {r['level']}"
    lines.append(f"| {r['width']:g} | {what} | {pct(r['density'])} | "
                 f"{mean_std(r['test_accuracy'])} |")
  return "\n".join(lines)


def construction_table(built: dict) -> str:
  lines = ["| construction | n | seeds | weight error | output error (rel.) "
           "| test acc (%) | weights kept (%) | random-net parameters |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in built["rows"]:
    e = r["relative_error"]
    lines.append(f"| {r['construct']} | {r['factor']} | {len(e['per_seed'])} "
                 f"| {r['weight_error']['mean']:.2e} "
                 f"| {e['mean']:.2e} ± {e['std']:.1e} | "
                 f"{mean_std(r['test_accuracy'])} | {pct(r['density']['mean'])}"
                 f" | {r['parameters']} |")
  return "\n".join(lines)


def _dense_at(summary: StrongSummary) -> dict[float, dict]:
  return {r["width"]: r["test_accuracy"] for r in summary.references
          if r["level"] == 0}


def plot_vs_width(summary: StrongSummary, path: str) -> None:
  """Test accuracy vs width, one line per (rule, k); dense trained nets."""
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for rule in summary.rules:
    for i, k in enumerate(summary.keep):
      rows = sorted((r for r in summary.edge_popup
                     if r["rule"] == rule and r["keep"] == k),
                    key=lambda r: r["width"])
      w = [r["width"] for r in rows]
      m = [100 * r["test_accuracy"]["mean"] for r in rows]
      s = [100 * r["test_accuracy"]["std"] for r in rows]
      ax.errorbar(w, m, yerr=s, marker="o" if rule != "units" else "s",
                  ls="-" if rule == "layerwise" else
                  ("--" if rule == "units" else ":"), capsize=2,
                  label=f"{rule}, k={100 * k:g}%")
  dense = _dense_at(summary)
  if dense:
    w = sorted(dense)
    ax.plot(w, [100 * dense[x]["mean"] for x in w], "k^-", lw=2,
            label="dense, weights trained")
  ax.set_xscale("log", base=2)
  ax.set_xticks(summary.widths)
  ax.set_xticklabels([f"{w:g}" for w in summary.widths])
  ax.set_xlabel("width multiplier of the random network")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"Strong tickets of {summary.model} on {summary.dataset}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_vs_density(summary: StrongSummary, path: str) -> None:
  """Test accuracy vs weights used: supermasks (no weight training) and
  IMP tickets (trained) side by side."""
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for rule in summary.rules:
    for width in summary.widths:
      rows = sorted((r for r in summary.edge_popup
                     if r["rule"] == rule and r["width"] == width),
                    key=lambda r: -r["density"])
      ax.plot([100 * r["density"] for r in rows],
              [100 * r["test_accuracy"]["mean"] for r in rows],
              marker="o" if rule != "units" else "s",
              ls="-" if rule != "units" else "--",
              label=f"{rule}, width {width:g}")
  imp = sorted((r for r in summary.references
                if r["width"] in summary.widths), key=lambda r: -r["density"])
  base = [r for r in imp if any(q["level"] > 0 and q["width"] == r["width"]
                                for q in imp)]
  if base:
    ax.plot([100 * r["density"] for r in base],
            [100 * r["test_accuracy"]["mean"] for r in base], "k^-", lw=2,
            label=f"IMP (weights trained), width {base[0]['width']:g}")
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("weights used (%)")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("Subnetworks without weight training vs IMP tickets")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_construction(built: dict, path: str) -> None:
  """Weight error (with the counting limit), output error and accuracy of
  the constructed subnetworks vs n (log scale)."""
  fig, (a, o, b) = plt.subplots(1, 3, figsize=(13, 4))
  lows = []
  for kind in sorted({r["construct"] for r in built["rows"]}):
    rows = sorted((r for r in built["rows"] if r["construct"] == kind),
                  key=lambda r: r["factor"])
    n = np.array([r["factor"] for r in rows], float)
    w = np.array([r["weight_error"]["mean"] for r in rows])
    lows.append(w.min())
    line, = a.loglog(n, w, "o-", base=2, label=f"{kind}: measured")
    rate = built["rates"].get(kind)
    if rate:
      ref = np.asarray(rate["reference"]) / rows[0]["relative_error"]["mean"]
      a.loglog(n, ref * w[0], ls=":", base=2, color=line.get_color(),
               label=f"{kind}: {rate['label']}")
    o.semilogx(n, [r["relative_error"]["mean"] for r in rows], "o-", base=2,
               color=line.get_color(), label=kind)
    b.semilogx(n, [100 * r["test_accuracy"]["mean"] for r in rows], "o-",
               base=2, color=line.get_color(), label=kind)
  a.set_ylim(bottom=min(lows) / 10)
  b.axhline(100 * built["target"]["test_accuracy"], color="k", ls="--",
            label="target (trained)")
  a.set_ylabel("mean |w_subnet - w_target|")
  o.set_ylabel("relative output error")
  b.set_ylabel("test accuracy (%)")
  for ax in (a, o, b):
    ax.set_xlabel("n (random units per target input)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  fig.suptitle("Strong tickets by construction (random subset sum)")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def console_text(summary: StrongSummary) -> str:
  parts = []
  if summary.edge_popup:
    parts += [edge_popup_table(summary), "", reference_table(summary)]
  if summary.construction:
    parts += ["", construction_table(summary.construction)]
  return "\n".join(parts)


def write_report(wd: Workdir, summary: StrongSummary) -> None:
  """report.md, strong_vs_width.png, strong_vs_density.png,
  construction.png."""
  text = [f"# strong: {summary.model} on {summary.dataset}", ""]
  if summary.edge_popup:
    plot_vs_width(summary, wd.file("strong_vs_width.png"))
    plot_vs_density(summary, wd.file("strong_vs_density.png"))
    text += [
        "## Edge-popup supermasks (no weight training)", "",
        f"Frozen random weights ({summary.weight_init}), trained scores; "
        "`k` is the fraction of weights KEPT per layer (for `units`, of "
        "each hidden layer's units; the output layer stays dense). "
        "'weights used' counts the kernels' weights the subnetwork reads "
        "(for `units`, weights into and out of dropped units removed). Mean "
        f"± std over seeds {summary.seeds}.", "", edge_popup_table(summary),
        "", "Trained references (`train` recipe; IMP with the `imp` "
        "section):", "", reference_table(summary), "",
        "![accuracy vs width](strong_vs_width.png)", "",
        "![accuracy vs density](strong_vs_density.png)", ""]
  if summary.construction:
    c = summary.construction
    plot_construction(c, wd.file("construction.png"))
    text += ["## Strong tickets by construction", "", c["description"], "",
             f"Target: {c['target']['architecture']}, trained, test accuracy "
             f"{pct(c['target']['test_accuracy'])}%.", "",
             construction_table(c), ""]
    for kind, rate in c["rates"].items():
      text.append(f"- `{kind}`: {rate['text']}")
    if c.get("rate_text"):
      text += ["", c["rate_text"]]
    text += ["", "![construction](construction.png)", ""]
  text.append(f"Wall time {summary.wall_time_s:.0f} s (per stage: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in
                          summary.timings_s.items()) + ").")
  write_atomic(wd.file("report.md"), "\n".join(text) + "\n")
