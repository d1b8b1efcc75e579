"""Reports: markdown tables and matplotlib plots written into the workdir."""

from __future__ import annotations

import functools

import numpy as np

from jaxticket.core.workdir import Workdir, write_atomic


@functools.cache
def _pyplot():
  """matplotlib.pyplot on the Agg backend, imported at the first plot
  (0.25 s; ``jaxticket train`` writes no plot)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def density_axis(ax) -> None:
  """Log-scale 'weights remaining (%)' axis, sparsest to the right, with
  plain tick labels."""
  ax.set_xscale("log")
  lo, hi = sorted(ax.dataLim.intervalx)
  ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1)
           if lo / 1.2 <= t <= hi * 1.2]
  ax.set_xticks(ticks)
  ax.set_xticklabels([f"{t:g}" for t in ticks])
  ax.minorticks_off()
  ax.set_xlim(hi * 1.15, lo / 1.15)  # inverted: sparser to the right
  ax.set_xlabel("weights remaining (%)")


def pct(x: float | None) -> str:
  return "—" if x is None else f"{100 * x:.2f}"


def imp_table(rows: list[dict]) -> str:
  """Markdown table: level, density, test/val accuracy mean +- std (%)."""
  lines = ["| level | density (%) | sparsity (%) | test acc (%) | val acc (%) |",
           "|---:|---:|---:|---:|---:|"]
  for r in rows:
    t, v = r["test_accuracy"], r["val_accuracy"]
    lines.append(f"| {r['level']} | {pct(r['density'])} | "
                 f"{pct(1 - r['density'])} | {pct(t['mean'])} ± {pct(t['std'])}"
                 f" | {pct(v['mean'])} ± {pct(v['std'])} |")
  return "\n".join(lines)


def plot_accuracy_vs_density(rows: list[dict], path: str, title: str) -> None:
  """Test accuracy vs. density on a log axis, mean line with a +-std band."""
  plt = _pyplot()
  d = np.array([r["density"] for r in rows])
  m = np.array([r["test_accuracy"]["mean"] for r in rows], float) * 100
  s = np.array([r["test_accuracy"]["std"] for r in rows], float) * 100
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(d * 100, m, "o-", label="IMP ticket (mean over seeds)")
  ax.fill_between(d * 100, m - s, m + s, alpha=0.25, label="± 1 std")
  ax.axhline(m[0], color="gray", ls="--", lw=1, label="dense")
  density_axis(ax)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_imp_report(wd: Workdir, summary: dict) -> None:
  """report.md and accuracy_vs_density.png for an ``imp``/``train`` run."""
  rows = summary["levels"]
  title = (f"{summary['model']} on {summary['dataset']}, "
           f"{len(summary['seeds'])} seeds, rewind={summary['rewind']}")
  text = [f"# {wd.command}: {title}", "",
          f"IMP schedule `{summary['schedule']}`, strategy "
          f"`{summary['strategy']}`, rewind `{summary['rewind']}` "
          f"(step {summary['rewind_step']}). Accuracies are mean ± std over "
          "seeds; density counts prunable weights only.", "",
          imp_table(rows), ""]
  if len(rows) > 1:
    plot_accuracy_vs_density(rows, wd.file("accuracy_vs_density.png"), title)
    text += ["![test accuracy vs density](accuracy_vs_density.png)", ""]
  diverged = [f"level {r['level']}: seed {d['seed']} at step {d['step']}"
              for r in rows for d in r.get("diverged", [])]
  if diverged:
    text += ["Diverged (NaN/Inf loss; left out of the means): "
             + "; ".join(diverged) + ".", ""]
  if summary.get("auto_rewind"):
    a = summary["auto_rewind"]
    text += [f"Rewind step chosen automatically: {a['chosen']} (earliest "
             f"step with a dense test-error barrier below "
             f"{pct(a['threshold'])}%; barriers by step: "
             + ", ".join(f"{k}: {pct(v)}%" for k, v in a["test_barrier"].items())
             + ("" if a["stable"] else "; none was stable") + ").", ""]
  write_atomic(wd.file("report.md"), "\n".join(text))


def _mean_std(stat: dict) -> str:
  return f"{pct(stat['mean'])} ± {pct(stat['std'])}"


def lmc_table(rows: list[dict]) -> str:
  """Markdown table: rewind step, error/loss barriers and the children's
  test error (error columns in %, mean ± std over seeds)."""
  lines = ["| rewind step k | test error barrier (%) | train error barrier (%)"
           " | test loss barrier | child test error (%) |",
           "|---:|---:|---:|---:|---:|"]
  for r in rows:
    loss = r["test_loss_barrier"]
    lines.append(f"| {r['rewind_step']} | {_mean_std(r['test_barrier'])} | "
                 f"{_mean_std(r['train_barrier'])} | {loss['mean']:.4f} ± "
                 f"{loss['std']:.4f} | {_mean_std(r['child_test_error'])} |")
  return "\n".join(lines)


def plot_lmc(summary: dict, path_png: str, barrier_png: str) -> None:
  """Test (solid) and train (dotted) error along the path per rewind step,
  and the test/train error barrier vs rewind step."""
  plt = _pyplot()
  alphas = np.asarray(summary["alphas"])
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, r in enumerate(summary["rows"]):
    color = f"C{i % 10}"
    ax.plot(alphas, 100 * np.asarray(r["curve"]["test_error"]), "-",
            color=color, label=f"k={r['rewind_step']}")
    ax.plot(alphas, 100 * np.asarray(r["curve"]["train_error"]), ":",
            color=color)
  conn = summary.get("connectivity")
  if conn:
    for who, style in (("ticket", "k--"), ("scratch", "r--")):
      ax.plot(alphas, 100 * np.asarray(conn[f"{who}_to_pruned"][
          "curve_test_error"]), style, label=f"{who} to pruned solution")
  ax.set_xlabel("interpolation alpha")
  ax.set_ylabel("error (%)  (solid: test, dotted: train)")
  ax.set_title(f"linear paths between children, level {summary['level']}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path_png, dpi=120)
  plt.close(fig)

  ks = np.array([r["rewind_step"] for r in summary["rows"]])
  fig, ax = plt.subplots(figsize=(6, 4))
  for key, label in (("test_barrier", "test"), ("train_barrier", "train")):
    m = np.array([r[key]["mean"] for r in summary["rows"]]) * 100
    sd = np.array([r[key]["std"] for r in summary["rows"]]) * 100
    ax.errorbar(ks, m, yerr=sd, marker="o", capsize=3, label=label)
  ax.axhline(100 * summary["stable_barrier"], color="gray", ls="--", lw=1,
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


def write_lmc_report(wd: Workdir, summary: dict) -> None:
  """report.md, lmc_paths.png and instability.png for an ``lmc`` run."""
  what = ("the dense network" if not summary["level"] else
          f"the IMP ticket of level {summary['level']} "
          f"({pct(summary['density'])}% of weights)")
  stable = summary["stable_rewind_step"]
  text = [f"# lmc: instability of {what}", "",
          f"{summary['model']} on {summary['dataset']}, seeds "
          f"{summary['seeds']}, {summary['children']} children per rewind "
          f"step and seed (differing only in data order/augmentation), "
          f"{len(summary['alphas'])} interpolation points, BatchNorm "
          f"statistics {'re-estimated' if summary['bn_reestimate'] else 'interpolated'}"
          " at each point. Barrier = max error along the path minus the mean "
          "of the endpoints' errors (Frankle et al. 2020).", "",
          lmc_table(summary["rows"]), "",
          (f"Stable (test barrier < {pct(summary['stable_barrier'])}%) from "
           f"rewind step {stable} on." if stable is not None else
           f"Not stable at any rewind step tried (threshold "
           f"{pct(summary['stable_barrier'])}%)."), "",
          "![error along the paths](lmc_paths.png)",
          "![barrier vs rewind step](instability.png)", ""]
  conn = summary.get("connectivity")
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
      text.append(f"| {who} to pruned solution | {_mean_std(c['test_barrier'])}"
                  f" | {_mean_std(c['train_barrier'])} |")
    text.append("")
  t = summary["timings_s"]
  text += [f"Time: parent {t['parent_s']:.1f} s, children "
           f"{t['children_s']:.1f} s, paths {t['paths_s']:.1f} s.", ""]
  plot_lmc(summary, wd.file("lmc_paths.png"), wd.file("instability.png"))
  write_atomic(wd.file("report.md"), "\n".join(text))


SETTING_STYLE = {"ticket": ("C0", "o-"), "omp": ("C1", "s--"),
                 "random_reinit": ("C3", "v-"), "small_dense": ("C2", "^-"),
                 "random_prune": ("C4", "x:"), "shuffle": ("C5", "d:"),
                 "smart_ratio": ("C6", "*:")}


def verdict_table(verdicts: list[dict]) -> str:
  """Markdown: one row per checked sparsity with class and conditions."""
  lines = ["| sparsity (%) | class | ticket LR | 1 sparse | 2 > SDT | 3 > RR | "
           "4 ~ dense@LR | 5 ~ best dense | gap vs best dense (pts, 95% CI) |",
           "|---:|:---|---:|:-:|:-:|:-:|:-:|:-:|---:|"]
  mark = lambda b: "✓" if b else "✗"
  for v in verdicts:
    c = v["conditions"]
    g = v["gaps"]["vs_dense_best"]
    ci = (f" [{100 * g['ci_low']:+.2f}, {100 * g['ci_high']:+.2f}]"
          if g.get("ci_low") is not None else "")
    lines.append(f"| {pct(v['sparsity'])} | **{v['class']}** | {v['lr']:g} | "
                 + " | ".join(mark(c[i]) for i in "12345")
                 + f" | {100 * g['gap']:+.2f}{ci} |")
  return "\n".join(lines)


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


def plot_sanity(summary: dict, path: str) -> None:
  """Test accuracy vs. density per LR: a line with a seed band per setting,
  the dense net as a horizontal band."""
  plt = _pyplot()
  lrs = summary["lrs"]
  fig, axes = plt.subplots(1, len(lrs), figsize=(5 * len(lrs), 4),
                           sharey=True, squeeze=False)
  for ax, lr in zip(axes[0], lrs):
    rows = [r for r in summary["rows"] if r["lr"] == lr and r["level"] > 0]
    for name, (color, style) in SETTING_STYLE.items():
      pts = [(r["density"], r[name]["mean"], r[name]["std"]) for r in rows
             if name in r]
      if not pts:
        continue
      d, m, s = (np.array(x) * 100 for x in zip(*pts))
      ax.plot(d, m, style, color=color, label=name, ms=4)
      ax.fill_between(d, m - s, m + s, color=color, alpha=0.15)
    dense = [r for r in summary["rows"] if r["lr"] == lr][0]["dense"]
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


def plot_accuracy_vs_lr(summary: dict, density: float, path: str) -> None:
  """Test accuracy vs. LR at one density, one line per setting."""
  plt = _pyplot()
  rows = [r for r in summary["rows"] if abs(r["density"] - density) < 1e-9]
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
  ax.set_xticks(summary["lrs"])
  ax.set_xticklabels([f"{lr:g}" for lr in summary["lrs"]])
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


def write_sanity_report(wd: Workdir, summary: dict) -> None:
  """report.md with the verdict, accuracy tables and plots."""
  settings = ["ticket", "omp", "random_reinit", "small_dense", "random_prune",
              "shuffle", "smart_ratio", "dense"]
  checked = [r for r in summary["rows"]
             if any(v["level"] == r["level"] for v in summary["verdicts"])]
  plot_sanity(summary, wd.file("sanity_accuracy_vs_density.png"))
  verdicts = summary["verdicts"]
  chosen = max((v for v in verdicts), key=lambda v: v["sparsity"])
  if any(v["conditions"]["1"] for v in verdicts):
    chosen = min((v for v in verdicts if v["conditions"]["1"]),
                 key=lambda v: v["sparsity"])
  plot_accuracy_vs_lr(summary, chosen["density"],
                      wd.file("sanity_accuracy_vs_lr.png"))
  crit = summary["criteria"]
  text = [f"# Sanity check: {summary['model']} on {summary['dataset']}", "",
          summary["conclusion"], "",
          "## Verdict per sparsity", "",
          f"Conditions of Ma et al. (2021): 'similar' = within "
          f"{100 * crit['tolerance']:.1f} points, 'clearly' = by more than "
          f"{100 * crit['margin']:.1f} points, test accuracy means over "
          f"{len(summary['seeds'])} seeds; best LRs chosen on validation.", "",
          verdict_table(verdicts), "",
          "## Test accuracy (%) at the checked sparsities", "",
          sanity_accuracy_table(checked, settings), "",
          "![accuracy vs density](sanity_accuracy_vs_density.png)", "",
          "![accuracy vs lr](sanity_accuracy_vs_lr.png)", "",
          "## Why it wins: weights remembered from initialization", "",
          "Mean over layers of the Pearson correlation between the rewind-"
          "point and trained weights (Liu et al. 2021) and of the overlap of "
          f"their top-{100 * summary.get('overlap_top', 0.2):.0f}% magnitudes "
          "within the mask (Ma et al. 2021, App. G; independent orderings "
          "give the top fraction itself). High values at small LRs are the "
          "regime where tickets beat their re-initialization.", "",
          diagnostics_table(summary.get("diagnostics", [])), "",
          "Ticket (IMP) accuracy at every level is in summary.json `rows`."]
  write_atomic(wd.file("report.md"), "\n".join(text))


def _fmt(x: float | None, scale: float = 100, signed: bool = False) -> str:
  if x is None or (isinstance(x, float) and np.isnan(x)):
    return "—"
  return f"{scale * x:+.2f}" if signed else f"{scale * x:.2f}"


def study_table(result: dict) -> str:
  """Markdown table of a study (one row per factor value)."""
  lines = [f"| {result['factor']} | best dense acc (%) | ticket acc (%) at "
           "sparsity | LT-RR (pts) | IMP-OMP (pts) | largest jackpot "
           "sparsity (%) | largest secondary sparsity (%) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for r in result["rows"]:
    lines.append(
        f"| {r['value']} | {_fmt(r['best_dense_accuracy'])} (lr "
        f"{r['dense_lr']:g}) | {_fmt(r['best_ticket_accuracy'])} at "
        f"{_fmt(r['sparsity'])}% (lr {r['ticket_lr']:g}) | "
        f"{_fmt(r['lt_rr_gap'], signed=True)} | "
        f"{_fmt(r['imp_omp_gap'], signed=True)} | "
        f"{_fmt(r['largest_jackpot_sparsity'])} | "
        f"{_fmt(r['largest_secondary_sparsity'])} |")
  return "\n".join(lines)


def plot_study(result: dict, path: str) -> None:
  """Gaps and largest winning sparsities against the factor's values."""
  plt = _pyplot()
  rows = result["rows"]
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
    ax.set_xlabel(result["factor"])
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(f"{result['model']} on {result['dataset']}")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_study_report(wd: Workdir, result: dict) -> None:
  plot_study(result, wd.file("study.png"))
  text = [f"# Study of {result['factor']}: {result['model']} on "
          f"{result['dataset']}", "",
          "Each value ran the full sanity check (sub-workdirs named "
          f"`{result['factor']}=VALUE`). Gaps are test-accuracy points at the "
          "largest checked sparsity, for the ticket at its best validation "
          "LR; an empty sparsity means no such ticket.", "",
          study_table(result), "", "![study](study.png)", ""]
  write_atomic(wd.file("report.md"), "\n".join(text))


def _point_label(point: dict) -> str:
  return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())


def sweep_table(summary: dict) -> str:
  """Markdown: per grid point, test/val accuracy at the densest and the
  sparsest level (mean ± std over seeds)."""
  points = []
  for r in summary["rows"]:
    if r["point"] not in points:
      points.append(r["point"])
  lines = ["| grid point | dense test acc (%) | sparsest density (%) | "
           "sparsest test acc (%) | best val acc (%) at density (%) |",
           "|---|---:|---:|---:|---:|"]
  for p in points:
    rows = [r for r in summary["rows"] if r["point"] == p]
    first, last = rows[0], rows[-1]
    best = max(rows, key=lambda r: -1 if r["val_accuracy"]["mean"] is None
               else r["val_accuracy"]["mean"])
    lines.append(f"| {_point_label(p)} | {_mean_std(first['test_accuracy'])} "
                 f"| {pct(last['density'])} | {_mean_std(last['test_accuracy'])}"
                 f" | {pct(best['val_accuracy']['mean'])} at "
                 f"{pct(best['density'])} |")
  return "\n".join(lines)


def write_sweep_report(wd: Workdir, summary: dict) -> None:
  """report.md and sweep.png (test accuracy vs density per grid point)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  points = []
  for r in summary["rows"]:
    if r["point"] not in points:
      points.append(r["point"])
  for i, p in enumerate(points):
    rows = [r for r in summary["rows"] if r["point"] == p]
    d = np.array([r["density"] for r in rows]) * 100
    m = np.array([r["test_accuracy"]["mean"] for r in rows], float) * 100
    ax.plot(d, m, "o-", color=f"C{i % 10}", label=_point_label(p), ms=3)
  density_axis(ax)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"sweep: {summary['model']} on {summary['dataset']}")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(wd.file("sweep.png"), dpi=120)
  plt.close(fig)
  layout = [f"- `{p['workdir']}`: {_point_label(p['values']) or 'base'}; "
            f"{p['replicas']} replicas on {p.get('devices', 1)} device(s)"
            for p in summary["programs"]]
  hosts = summary.get("hosts", {})
  if hosts.get("processes", 1) > 1:
    layout.append(f"\n{hosts['processes']} processes, layout "
                  f"`{hosts['layout']}` (split: each process runs whole "
                  "programs; span: every program over all processes' "
                  "devices).")
  text = [f"# sweep: {summary['model']} on {summary['dataset']}", "",
          f"Grid: {summary['grid']}; {summary['seeds']} seeds per point. "
          "Accuracies are mean ± std over seeds.", "",
          sweep_table(summary), "", "![accuracy vs density](sweep.png)", "",
          "Programs (each an IMP workdir):", *layout, ""]
  write_atomic(wd.file("report.md"), "\n".join(text))
