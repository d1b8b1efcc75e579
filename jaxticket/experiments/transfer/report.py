"""report.md, accuracy_vs_density.png and the console text of ``jaxticket
transfer`` (read only from the summary)."""

from __future__ import annotations

from jaxticket.core.stats import mean_ci
from jaxticket.core.workdir import Workdir, write_atomic
from jaxticket.experiments.plotting import plt
from jaxticket.experiments.summaries import TransferSummary


def fmt(s: dict) -> str:
  """Accuracy in % as mean ± 95% t-interval half-width over seeds."""
  if s is None or s.get("mean") is None:
    return "-"
  lo, hi = mean_ci([v for v in s.get("per_seed", []) if v is not None])
  tail = f" ± {50 * (hi - lo):.1f}" if lo is not None else ""
  return f"{100 * s['mean']:.1f}{tail}"


def console_text(summary: TransferSummary) -> str:
  lines = [f"transfer from {summary.checkpoint}: tasks "
           f"{', '.join(summary.tasks)}, {len(summary.seeds)} seeds, "
           f"{summary.rounds} rounds ({summary.wall_time_s:.0f} s)"]
  for t, d in summary.dense.items():
    last = [r for r in summary.rows if r["task"] == t and r["arm"] == "imp"]
    tail = (f"; IMP at density {last[-1]['density']:.2f}: "
            f"{fmt(last[-1]['test_accuracy'])}%" if last else "")
    lines.append(f"{t}: dense {fmt(d['test_accuracy'])}%{tail}")
  for u in summary.universal:
    if u["level"] == summary.rounds:
      lines.append(f"mask {u['source']} at round {u['level']}: matching on "
                   f"{', '.join(u['matching_on']) or 'none'}"
                   + (" (universal)" if u["universal"] else ""))
  return "\n".join(lines)


def plot(summary: TransferSummary, path: str) -> None:
  """Test accuracy vs density per task: IMP and its baselines."""
  k = len(summary.tasks)
  fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.5), squeeze=False)
  for ax, t in zip(axes[0], summary.tasks):
    for arm in ("imp", "random_pruning", "random_reinit"):
      pts = [(r["density"], 100 * r["test_accuracy"]["mean"])
             for r in summary.rows if r["task"] == t and r["arm"] == arm]
      if pts:
        ax.plot(*zip(*pts), marker="o", label=arm)
    d = summary.dense[t]["test_accuracy"]
    ax.axhline(100 * d["mean"], color="gray", ls=":", label="dense")
    ax.axhspan(100 * (d["mean"] - d["std"]), 100 * (d["mean"] + d["std"]),
               color="gray", alpha=0.15)
    ax.invert_xaxis()
    ax.set(title=t, xlabel="density (prunable weights kept)",
           ylabel="test accuracy (%)")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_report(wd: Workdir, summary: TransferSummary) -> None:
  plot(summary, wd.file("accuracy_vs_density.png"))
  text = [f"# transfer: lottery tickets in the pre-trained encoder", "",
          f"Checkpoint `{summary.checkpoint}`; each round prunes "
          f"{summary.prune_fraction:g} of the original prunable weights "
          "(global magnitude), rewinds the pre-trained tensors (task head "
          f"kept), {len(summary.seeds)} seeds; mean ± 95% CI. Wall time "
          f"{summary.wall_time_s:.0f} s.", "",
          "![accuracy vs density](accuracy_vs_density.png)", "",
          "## IMP and baselines (test accuracy, %)", "",
          "| task | round | density | IMP | random pruning | random reinit |",
          "|---|---|---|---|---|---|"]
  for t in summary.tasks:
    d = summary.dense[t]
    scratch = [r for r in summary.rows if r["task"] == t and
               r["arm"] == "scratch"]
    text.append(f"| {t} | 0 | 1.000 | {fmt(d['test_accuracy'])} (dense) "
                "| | " + (f"{fmt(scratch[0]['test_accuracy'])} (dense, "
                          "from scratch)" if scratch else "") + " |")
    for level in range(1, summary.rounds + 1):
      arm = {r["arm"]: r for r in summary.rows
             if r["task"] == t and r["level"] == level}
      if arm:
        text.append(f"| {t} | {level} | {arm['imp']['density']:.3f} | "
                    + " | ".join(fmt(arm[a]["test_accuracy"]) for a in
                                 ("imp", "random_pruning", "random_reinit"))
                    + " |")
  text += ["", "## Transfer matrix (rows: source mask, columns: target "
           "task; test accuracy %, * = matching: within one std of the "
           "target's dense mean, Chen et al. 2020 Sec. 2)", ""]
  targets = summary.tasks
  for level in range(1, summary.rounds + 1):
    cells = [m for m in summary.matrix if m["level"] == level]
    if not cells:
      continue
    text += [f"### round {level} (density "
             f"{summary.densities[level - 1]:.3f})", "",
             "| source \\ target | " + " | ".join(targets) + " | universal |",
             "|---" * (len(targets) + 2) + "|"]
    for src in summary.tasks + ["random"]:
      row = {m["target"]: m for m in cells if m["source"] == src}
      uni = [u for u in summary.universal
             if u["level"] == level and u["source"] == src]
      text.append(f"| {src} | " + " | ".join(
          fmt(row[t]["test_accuracy"]) + ("*" if row[t]["matching"] else "")
          for t in targets) + f" | {'yes' if uni and uni[0]['universal'] else 'no'} |")
    text.append("")
  text += ["Dense reference (test %): " + ", ".join(
      f"{t} {fmt(d['test_accuracy'])} (std {100 * d['test_accuracy']['std']:.1f})"
      for t, d in summary.dense.items()), ""]
  floor = [t for t, d in summary.dense.items() if "majority_test" in d
           and d["test_accuracy"]["mean"] <= d["majority_test"] + 0.005]
  if floor:
    text += [f"**Caution**: the dense fine-tuned net does not beat the "
             f"majority class on {', '.join(floor)} (majority "
             + ", ".join(f"{100 * summary.dense[t]['majority_test']:.1f}%"
                         for t in floor)
             + "): matching there is vacuous; fine-tune longer or "
             "pre-train more.", ""]
  write_atomic(wd.file("report.md"), "\n".join(text) + "\n")
