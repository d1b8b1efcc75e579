"""The benchmark lottery for lottery-ticket methods (Dehghani et al. 2021).

Dehghani et al. ("The Benchmark Lottery", arXiv:2107.07002, Sec. 3-4):
which method "wins" depends on the tasks in the benchmark and on how the
per-task results are aggregated. ``jaxticket benchmark`` runs every method
of ``benchmark.methods`` on every dataset of ``benchmark.datasets`` with
one recipe policy and judges the claims that survive:

1. Recipe (per dataset): the dense net at every LR of ``benchmark.lrs``
   (a ``sweep`` sub-run, all LRs x seeds one vmapped program); the LR with
   the best mean *validation* accuracy is that dataset's recipe, recorded
   and used by every method there (Ma et al. 2021's first condition: tune
   the dense net, not each method).
2. Cells (method, dataset) as sub-runs of existing experiments, so each is
   resumable on its own and a killed benchmark resumes per cell:
   ``cells/imp__DATASET`` (``imp``: the IMP ticket, rewound to init,
   ``benchmark.prune_fraction`` of the remaining weights per level,
   globally, output layer ranked with the rest) and ``cells/pai__DATASET``
   (``pai``: ALL the pruning-at-initialization methods of the dataset in
   one sub-run, hence one program; no Su et al. checks, no small-dense or
   collapse extras) and ``cells/dst__DATASET`` (``dst``: ALL the dynamic-
   sparse-training methods of the dataset, e.g. SET and RigL, in one
   sub-run, its targets the IMP cell's tickets of ``cells/imp__DATASET``,
   given as ``dst.imp_workdir``, so the IMP run is shared). Every method
   trains at the same densities (1 - prune_fraction)^L, L in
   ``benchmark.levels``, the same seeds and the same ``train.steps``.
3. Statistics (:mod:`ranking`): a cell's score is its test accuracy
   averaged over the densities (per seed); per dataset the ranks with a
   paired bootstrap CI over seeds; mean accuracy, mean rank, median
   accuracy and wins; Kendall tau-b between the datasets' rankings and
   between the aggregations' rankings; leave-one-dataset-out winner and
   pairwise-order flips. The selective column: each method's area under
   the softmax coverage-risk curve (core/selective.py), mean over datasets
   and densities.

DST cells follow ``jaxticket dst`` (its schedule, ``dst.update_every``,
``dst.drop_fraction``, ...): the dst experiment trains at the IMP level's
exact kept count, which here is (1 - prune_fraction)^L of the prunable
weights because the IMP cell ranks the output layer with the rest. The
cell's density is the achieved one (its ``achieved_density``). dst's
barrier to the pruned solution is not a benchmark column, so the dst
sub-run measures it at the minimum ``dst.alphas=3`` points.
"""

from __future__ import annotations

import sys
import time
import warnings

import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket.core.checks import ConfigError, check_choice
from jaxticket.data import paths as data_paths
from jaxticket.data import text as text_lib
from jaxticket.experiments import common, registry
from jaxticket.experiments.benchmark import ranking, report, settings
from jaxticket.experiments.summaries import BenchmarkSummary


def pai_method_names() -> tuple[str, ...]:
  """Method names the ``pai`` experiment provides."""
  return tuple(registry.load("pai").methods_lib.METHODS)


def dst_method_names() -> tuple[str, ...]:
  """Method names of the ``dst`` experiment a benchmark cell can be: all
  but ``ticket`` (the ``imp`` cell already) and ``finetune`` (another IMP
  run with its own LR schedule)."""
  return tuple(m for m in registry.load("dst").settings.METHODS
               if m not in settings.DST_EXCLUDED)


def validate(cfg: ml_collections.ConfigDict) -> None:
  """The whole config: base keys, the ``benchmark`` section, its method
  names, and every dataset's sub-run config."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  allowed = settings.IMP_METHODS + pai_method_names() + dst_method_names()
  for m in cfg.benchmark.methods:
    if m in settings.DST_EXCLUDED:
      raise ConfigError(
          f"benchmark.methods: {m!r} is not a benchmark cell (the IMP "
          "ticket is the 'imp' cell; run `jaxticket dst` for "
          "prune-and-fine-tune); drop it.")
    check_choice("benchmark.methods", m, allowed, "benchmark method")
  dirs = settings.text_dirs(cfg)
  for d in cfg.benchmark.datasets:  # a missing package: one line, up front
    if d in settings.TEXT_DATASETS and d not in dirs:
      text_lib.default_folder(d, cfg.data.data_dir or
                              data_paths.default_data_dir(),
                              f"benchmark.text_dirs={d}")
  for d in cfg.benchmark.datasets:
    lr = lr_grid(cfg, d)[0]
    config_lib.validate(dataset_config(cfg, d, lr))
    if dst_methods(cfg):
      c = dst_config(cfg, d, lr, "")
      registry.load("dst").settings.validate(c)


def pai_methods(cfg) -> list[str]:
  dst = set(dst_method_names())
  return [m for m in cfg.benchmark.methods
          if m not in settings.IMP_METHODS and m not in dst]


def dst_methods(cfg) -> list[str]:
  dst = set(dst_method_names())
  return [m for m in cfg.benchmark.methods if m in dst]


def dataset_config(cfg: ml_collections.ConfigDict, dataset: str, lr: float
                   ) -> ml_collections.ConfigDict:
  """``cfg`` on ``dataset`` with the recipe's learning rate. A graph set
  gets ``benchmark.graph_model``, kernels-only masks and full-batch
  training (the batch = its training nodes, which the ``graph`` section's
  ``train_fraction`` sets)."""
  c = cfg.copy_and_resolve_references()
  c.data.name = dataset
  c.train.lr = float(lr)
  if dataset in settings.GRAPH_DATASETS:
    c.model.name = cfg.benchmark.graph_model
    c.masks.prunable = r"(^|/)kernel$"
    c.train.batch_size = len(common.load_data_unchecked(c).train_y)
  elif dataset in settings.TEXT_DATASETS:
    c.model.name = cfg.benchmark.text_model
    c.train.optimizer = cfg.benchmark.text_optimizer
    c.masks.prunable = r"(^|/)kernel$"
    c.data.dir = settings.text_dirs(cfg).get(dataset, "")
  return c


def model_label(cfg) -> str:
  """The model(s) the cells train: ``model.name``, and
  ``benchmark.graph_model`` / ``benchmark.text_model`` on the graph / text
  sets when there are any."""
  b = cfg.benchmark
  kinds = [("graphs", settings.GRAPH_DATASETS, b.graph_model),
           ("text", settings.TEXT_DATASETS, b.text_model)]
  used = [(k, m) for k, names, m in kinds
          if any(d in names for d in b.datasets)]
  images = [d for d in b.datasets if d not in settings.GRAPH_DATASETS +
            settings.TEXT_DATASETS]
  if not used:
    return cfg.model.name
  if not images and len(used) == 1:
    return used[0][1]
  extra = ", ".join(f"{k}: {m}" for k, m in used)
  return f"{cfg.model.name} ({extra})" if images else extra


def imp_config(cfg, dataset: str, lr: float) -> ml_collections.ConfigDict:
  """The IMP cell: levels up to the deepest benchmark level, rewind to
  init (Frankle & Carbin 2019 for LeNet), global magnitude, the output
  layer ranked with the rest (so level L keeps (1 - p)^L of the prunable
  weights, the density every other method gets)."""
  c = dataset_config(cfg, dataset, lr)
  c.imp.levels = max(cfg.benchmark.levels)
  c.imp.prune_fraction = float(cfg.benchmark.prune_fraction)
  c.imp.output_prune_fraction = -1.0
  c.imp.strategy = "global"
  c.imp.schedule = "iterative"
  c.imp.rewind = "init"
  c.imp.rewind_step = 0
  return c


def pai_config(cfg, dataset: str, lr: float) -> ml_collections.ConfigDict:
  """The PaI cells of one dataset: every PaI method, the benchmark's
  densities and seeds, none of pai's extra checks or references."""
  c = dataset_config(cfg, dataset, lr)
  c.pai.methods = tuple(pai_methods(cfg))
  c.pai.densities = tuple(settings.densities(cfg))
  c.pai.seeds = 0
  c.pai.checks = ()
  c.pai.small_dense = False
  c.pai.imp_workdir = "none"
  c.pai.collapse_points = 0
  return c


def dst_config(cfg, dataset: str, lr: float, imp_workdir: str
               ) -> ml_collections.ConfigDict:
  """The DST cells of one dataset: every DST method of the benchmark at
  its levels, seeds and steps, the tickets (targets) from the IMP cell's
  workdir ``imp_workdir`` (so the IMP keys are the IMP cell's), evaluated
  every ``train.eval_every`` steps, barriers at the minimum 3 points."""
  c = imp_config(cfg, dataset, lr)
  c.dst.methods = tuple(dst_methods(cfg))
  c.dst.levels = tuple(int(l) for l in cfg.benchmark.levels)
  c.dst.imp_workdir = imp_workdir
  c.dst.finetune_workdir = ""
  c.dst.eval_every = int(cfg.train.eval_every)
  c.dst.alphas = 3
  return c


# --------------------------------------------------------------------------
# Stage 1: the recipe per dataset.


def pick_recipe(cfg, wd, dataset: str, progress: bool) -> dict:
  """The dense LR of the dataset's grid (``benchmark.text_lrs`` for a text
  set, else ``benchmark.lrs``) with the best mean validation accuracy on
  ``dataset`` (ties: the first); a single LR is used as is."""
  lrs = lr_grid(cfg, dataset)
  c = dataset_config(cfg, dataset, lrs[0])  # (a graph set loads its data)
  optimizer = c.train.optimizer
  if len(lrs) == 1:
    return {"dataset": dataset, "lr": lrs[0], "optimizer": optimizer,
            "val": {}, "source": "given"}
  c.imp.levels = 0
  path = wd.file("recipes", dataset)
  summary = registry.load("sweep").run(
      c, ["train.lr=" + ",".join(f"{x:g}" for x in lrs)], path,
      progress=progress)
  val = {}
  for r in summary.rows:
    if r["level"] == 0:
      val[float(r["point"]["train.lr"])] = r["val_accuracy"]["mean"]
  score = [val.get(x) if val.get(x) is not None else -np.inf for x in lrs]
  best = lrs[int(np.argmax(score))]
  return {"dataset": dataset, "lr": best, "optimizer": optimizer,
          "val": {f"{k:g}": v for k, v in val.items()}, "source": path}


def lr_grid(cfg, dataset: str) -> list[float]:
  b = cfg.benchmark
  grid = b.text_lrs if dataset in settings.TEXT_DATASETS else b.lrs
  return [float(x) for x in grid]


# --------------------------------------------------------------------------
# Stage 2: the cells.


def per_seed(stat: dict | None, n: int) -> list[float]:
  """A ``stats`` dict's per-seed values, NaN where missing / diverged."""
  if not stat:
    return [float("nan")] * n
  return [float("nan") if v is None else float(v) for v in stat["per_seed"]]


def imp_cells(cfg, wd, dataset, lr, progress) -> tuple[list[dict], dict]:
  path = wd.file("cells", f"imp__{dataset}")
  s = registry.load("imp").run(imp_config(cfg, dataset, lr), path,
                               command="imp", progress=progress)
  n = len(s.seeds)
  by_level = {r["level"]: r for r in s.levels}
  cells = []
  for level, d in zip(cfg.benchmark.levels, settings.densities(cfg)):
    r = by_level[level]
    cells.append({"method": "imp", "dataset": dataset, "density": d,
                  "achieved_density": float(r["density"]),
                  "test": per_seed(r["test_accuracy"], n),
                  "aurc_softmax": per_seed(r.get("test_aurc_softmax"), n),
                  "aurc": per_seed(r.get("test_aurc"), n)})
  dense = {"dataset": dataset, "test": per_seed(by_level[0]["test_accuracy"],
                                                n), "source": "imp level 0"}
  return cells, {"seeds": s.seeds, "dense": dense, "workdir": path,
                 "wall_time_s": s.wall_time_s}


def pai_cells(cfg, wd, dataset, lr, progress) -> tuple[list[dict], dict]:
  path = wd.file("cells", f"pai__{dataset}")
  s = registry.load("pai").run(pai_config(cfg, dataset, lr), path,
                               progress=progress)
  n = len(s.seeds)
  rows = {(r["method"], r["density"]): r for r in s.rows}
  cells = []
  for m in pai_methods(cfg):
    for d in settings.densities(cfg):
      r = rows.get((m, d))
      if r is None:
        raise ConfigError(
            f"benchmark.methods: {m!r} cannot build density {d:g} on "
            f"{cfg.model.name} (see {path}/summary.json 'skipped'); drop the "
            "method or the level from benchmark.levels.")
      st = r["settings"]["pai"]
      cells.append({"method": m, "dataset": dataset, "density": d,
                    "achieved_density": d, "test": per_seed(st["test"], n),
                    "aurc_softmax": per_seed(st.get("test_aurc_softmax"),
                                             n),
                    "aurc": per_seed(st.get("test_aurc"), n)})
  dense = {"dataset": dataset, "test": per_seed(s.dense["test"], n),
           "source": "pai dense"}
  return cells, {"seeds": s.seeds, "dense": dense, "workdir": path,
                 "wall_time_s": s.wall_time_s}


def dst_cells(cfg, wd, dataset, lr, progress) -> tuple[list[dict], dict]:
  """The DST cells; the IMP cell's run (resumed or returned if finished)
  gives the tickets whose kept counts are the DST targets."""
  imp_path = wd.file("cells", f"imp__{dataset}")
  imp = registry.load("imp").run(imp_config(cfg, dataset, lr), imp_path,
                                 command="imp", progress=progress)
  level0 = next(r for r in imp.levels if r["level"] == 0)
  path = wd.file("cells", f"dst__{dataset}")
  s = registry.load("dst").run(dst_config(cfg, dataset, lr, imp_path), path,
                               progress=progress)
  n = len(s.seeds)
  rows = {(r["level"], r["method"]): r for r in s.rows}
  cells = []
  for m in dst_methods(cfg):
    for level, d in zip(cfg.benchmark.levels, settings.densities(cfg)):
      r = rows[(int(level), m)]
      cells.append({"method": m, "dataset": dataset, "density": d,
                    "achieved_density": float(r["density"]),
                    "test": per_seed(r["test_accuracy"], n),
                    "aurc_softmax": per_seed(r.get("test_aurc_softmax"), n),
                    "aurc": per_seed(r.get("test_aurc"), n)})
  dense = {"dataset": dataset, "test": per_seed(level0["test_accuracy"], n),
           "source": "imp level 0"}
  return cells, {"seeds": s.seeds, "dense": dense, "workdir": path,
                 "wall_time_s": s.wall_time_s}


# --------------------------------------------------------------------------
# Stage 3: the statistics.


def score_table(cfg, cells: list[dict]) -> np.ndarray:
  """``[method, dataset, seed]``: test accuracy averaged over densities."""
  b = cfg.benchmark
  out = []
  for m in b.methods:
    row = []
    for d in b.datasets:
      mine = [c["test"] for c in cells
              if c["method"] == m and c["dataset"] == d]
      row.append(np.mean(np.asarray(mine, np.float64), 0))  # NaN stays
    out.append(row)
  return np.asarray(out)


def statistics(cfg, cells: list[dict]) -> dict:
  """Ranks, aggregations, taus, flips and the selective column."""
  b = cfg.benchmark
  methods, datasets = list(b.methods), list(b.datasets)
  table = score_table(cfg, cells)  # [M, D, S]
  with warnings.catch_warnings():  # every seed diverged: NaN -> 0 below
    warnings.simplefilter("ignore", RuntimeWarning)
    means = np.nanmean(table, 2)  # [M, D]
  means = np.where(np.isnan(means), 0.0, means)  # all seeds diverged: 0
  dataset_ranks = []
  for j, d in enumerate(datasets):
    br = ranking.bootstrap_ranks(table[:, j, :], b.bootstrap, b.ci,
                                 seed=cfg.seed)
    dataset_ranks.append({"dataset": d, "rows": [
        {"method": m, "accuracy": float(means[i, j]),
         "rank": br["rank"][i], "rank_lo": br["rank_lo"][i],
         "rank_hi": br["rank_hi"][i], "p_best": br["p_best"][i]}
        for i, m in enumerate(methods)]})
  agg = ranking.aggregate(means)
  agg_ranks = ranking.aggregate_ranks(means)
  per_dataset = [ranking.ranks(means[:, j]) for j in range(len(datasets))]
  # the selective columns: AURC from the softmax for every net, and from
  # the abstain output when the nets are trained with the gambler's loss
  # (Liu et al. 2019); a cell of an older run without "aurc" counts as NaN
  abstain = cfg.task.loss == "gambler"

  def aurc_of(m, key, d=None):
    return _mean([v for c in cells if c["method"] == m and
                  (d is None or c["dataset"] == d)
                  for v in c.get(key, [float("nan")])])

  selective = []
  for m in methods:
    row = {"method": m, "aurc_softmax": aurc_of(m, "aurc_softmax"),
           "per_dataset": {d: aurc_of(m, "aurc_softmax", d)
                           for d in datasets}}
    if abstain:
      row["aurc_abstain"] = aurc_of(m, "aurc")
      row["per_dataset_abstain"] = {d: aurc_of(m, "aurc", d)
                                    for d in datasets}
    selective.append(row)
  return {
      "dataset_ranks": dataset_ranks,
      "aggregations": {k: dict(zip(methods, map(float, v)))
                       for k, v in agg.items()},
      "aggregation_ranks": {k: dict(zip(methods, map(float, v)))
                            for k, v in agg_ranks.items()},
      "tau_datasets": _listed(ranking.tau_matrix(per_dataset)),
      "tau_aggregations": _listed(ranking.tau_matrix(
          [agg_ranks[k] for k in ranking.AGGREGATIONS])),
      "leave_one_out": ranking.leave_one_out(means, methods, datasets),
      "selective": selective,
      "winners": ranking.winners(means, methods)}


def _mean(values) -> float | None:
  a = np.asarray(values, np.float64)
  a = a[np.isfinite(a)]
  return float(a.mean()) if a.size else None


def _listed(m: np.ndarray) -> list[list[float | None]]:
  return [[None if np.isnan(x) else float(x) for x in row] for row in m]


def conclusion(stats: dict, datasets: list[str]) -> str:
  """Plain sentences: the winner per aggregation, whether they agree, what
  leaving one dataset out flips."""
  w = stats["winners"]
  parts = ["Winner by " + "; ".join(f"{k.replace('_', ' ')}: "
                                    f"{' = '.join(v)}" for k, v in w.items())
           + "."]
  if len({tuple(sorted(v)) for v in w.values()}) > 1:
    parts.append("The aggregations disagree on the winner.")
  flips = [f for f in stats["leave_one_out"] if f["winner_flips"]]
  if flips:
    parts.append("Leaving one dataset out changes the winner: " + "; ".join(
        f"without {f['left_out']}, {f['aggregation'].replace('_', ' ')} "
        f"picks {' = '.join(f['winner_without'])}" for f in flips) + ".")
  elif len(datasets) > 1:
    parts.append("No single left-out dataset changes any aggregation's "
                 "winner.")
  return " ".join(parts)


# --------------------------------------------------------------------------
# The command.


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> BenchmarkSummary:
  """The whole benchmark; writes the workdir and returns the summary."""
  validate(cfg)  # before touching the workdir
  wd, done = common.open_run(cfg, workdir, "benchmark", BenchmarkSummary)
  if done is not None:
    return done
  t0 = time.time()
  b = cfg.benchmark
  recipes, cells, dense, subruns, timings = [], [], [], [], {}
  for d in tqdm(list(b.datasets), desc="benchmark datasets",
                disable=not progress, leave=False):
    t = time.time()
    rec = pick_recipe(cfg, wd, d, progress)
    recipes.append(rec)
    timings[f"recipe_{d}_s"] = round(time.time() - t, 2)
    parts = []
    if "imp" in b.methods:
      parts.append(("imp", imp_cells))
    if pai_methods(cfg):
      parts.append(("pai", pai_cells))
    if dst_methods(cfg):
      parts.append(("dst", dst_cells))
    for name, fn in parts:
      t = time.time()
      got, info = fn(cfg, wd, d, rec["lr"], progress)
      cells += got
      subruns.append({"experiment": name, "dataset": d,
                      "workdir": info["workdir"], "seeds": info["seeds"],
                      "wall_time_s": info["wall_time_s"]})
      if not any(x["dataset"] == d for x in dense):
        dense.append(info["dense"])
      timings[f"{name}_{d}_s"] = round(time.time() - t, 2)
  seed_sets = {tuple(s["seeds"]) for s in subruns}
  if len(seed_sets) > 1:
    tqdm.write(f"warning: sub-runs used different seeds {seed_sets}; the "
               "paired bootstrap pairs them by position.", file=sys.stderr)
  stats = statistics(cfg, cells)
  summary = BenchmarkSummary(
      methods=list(b.methods), datasets=list(b.datasets),
      densities=settings.densities(cfg), seeds=list(subruns[0]["seeds"]),
      model=model_label(cfg), recipes=recipes, cells=cells, dense=dense,
      dataset_ranks=stats["dataset_ranks"],
      aggregations=stats["aggregations"],
      aggregation_ranks=stats["aggregation_ranks"],
      tau_datasets=stats["tau_datasets"],
      tau_aggregations=stats["tau_aggregations"],
      leave_one_out=stats["leave_one_out"], selective=stats["selective"],
      subruns=subruns, conclusion=conclusion(stats, list(b.datasets)),
      timings_s=timings, wall_time_s=round(time.time() - t0, 2))
  report.write_benchmark_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(BenchmarkSummary)


def command(cfg: ml_collections.ConfigDict, args) -> BenchmarkSummary:
  """``jaxticket benchmark``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: BenchmarkSummary) -> str:
  return report.aggregation_table(summary) + "\n\n" + summary.conclusion
