"""Sanity checks for lottery tickets (Ma et al., NeurIPS 2021), vectorized.

For every learning rate in ``sanity.lrs`` and every seed, IMP runs on the
replica axis (one program: lr x seed). Then, at each checked sparsity, the
settings Ma et al. compare, plus Su et al.'s (NeurIPS 2020) controls, are
trained with exactly the ticket's recipe at every LR and seed:

- ``ticket``: the IMP mask on theta_0 (or theta_k when ``imp.rewind=step``);
- ``omp``: one-shot magnitude mask of the dense net trained at that LR, same
  density, same rewind point;
- ``random_reinit``: the ticket's mask on a fresh initialization;
- ``random_prune``: a random mask with the ticket's per-layer counts, theta_0;
- ``shuffle``: the ticket's mask permuted within each layer, theta_0;
- ``smart_ratio``: a random mask with Su et al.'s smart layer ratios, theta_0;
- ``small_dense``: a narrower dense net with (about) the ticket's number of
  weights (one program per width);
- ``dense``: the dense net at that LR (IMP level 0).

All same-shaped settings share one compiled program per sparsity (settings x
LRs x seeds on the replica axis). The controls train the full schedule from
step 0 (they have no theta_k of their own), except ``omp``, which rewinds like
the ticket. Selection (best LR) uses the validation split; the verdict
(:mod:`jaxticket.experiments.sanity.verdict`) compares test accuracies.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket.experiments.sanity import diagnostics
from jaxticket.experiments.imp import imp
from jaxticket.experiments.sanity import settings
from jaxticket.experiments.summaries import SanitySummary
from jaxticket.experiments import common
from jaxticket.core import masks as masks_lib
from jaxticket.core import selective
from jaxticket import models as models_lib
from jaxticket.experiments.sanity import report
from jaxticket.experiments.sanity import verdict as verdict_lib
from jaxticket.pruning import controls as random_masks
from jaxticket.core.workdir import Workdir
from jaxticket.core import loop as loop_lib
from jaxticket.core import step as step_lib
from jaxticket.core.replicas import ReplicaAxis

PyTree = Any

SETTINGS = ("ticket", "omp", "random_reinit", "small_dense", "random_prune",
            "shuffle", "smart_ratio", "dense")
#: Seed offset of the fresh initializations of ``random_reinit``.
REINIT_SEED_OFFSET = 1_000_003


def criteria(cfg: ml_collections.ConfigDict) -> verdict_lib.Criteria:
  """Thresholds from ``cfg.sanity``; negative = the dataset's default."""
  tol, mar = verdict_lib.DEFAULT_THRESHOLDS.get(cfg.data.name, (0.005, 0.005))
  sc = cfg.sanity
  return verdict_lib.Criteria(
      tolerance=sc.tolerance if sc.tolerance >= 0 else tol,
      margin=sc.margin if sc.margin >= 0 else mar,
      min_sparsity=sc.min_sparsity, test=sc.test, alpha=sc.alpha,
      require_significance=sc.require_significance)


def checked_levels(cfg: ml_collections.ConfigDict) -> list[int]:
  """IMP levels whose sparsity gets the full set of controls (``validate``
  refuses levels outside [1, imp.levels]; none given = every level)."""
  levels = [l for l in cfg.sanity.levels if 1 <= l <= cfg.imp.levels]
  return sorted(set(levels)) or list(range(1, cfg.imp.levels + 1))


def _stack(trees: list[PyTree]) -> PyTree:
  return jax.tree.map(lambda *xs: None if xs[0] is None else
                      jnp.concatenate(xs), *trees, is_leaf=lambda x: x is None)


def _map_replicas(fn, key: jax.Array, mask: PyTree) -> PyTree:
  keys = jax.random.split(key, jax.tree.leaves(mask)[0].shape[0])
  return loop_lib.vmapped(fn)(keys, mask)


def forward_order(s: common.Setup) -> list[str]:
  """Paths of the model's parameters from input to output."""
  variables = s.model.init(jax.random.key(0),
                           jnp.zeros((1, *s.data.input_shape)), train=False,
                           **common.context_kwargs(s.data))
  return masks_lib.creation_order(variables["params"])


def smart_ratio_layer_counts(s: common.Setup, ticket: PyTree, density: float
                             ) -> list[int]:
  """Su et al.'s smart-ratio kept counts per prunable leaf, in tree order
  (the ratios themselves follow the layers' forward order)."""
  paths = jax.tree.leaves(masks_lib.leaf_paths(ticket))  # prunable, tree order
  sizes = {p: int(np.prod(m.shape[1:]))
           for p, m in zip(paths, jax.tree.leaves(ticket))}
  ordered = [p for p in forward_order(s) if p in sizes]
  counts = random_masks.smart_ratio_counts_for(
      ordered, [sizes[p] for p in ordered], density, s.cfg.model.name,
      s.cfg.masks.output_layer)
  by_path = dict(zip(ordered, counts))
  return [by_path[p] for p in paths]


def control_masks(s: common.Setup, ticket: PyTree, key: jax.Array,
                  density: float) -> dict[str, PyTree]:
  """Random control masks for one sparsity (each with the replica axis)."""
  k1, k2, k3 = jax.random.split(key, 3)
  shuffled = _map_replicas(random_masks.shuffle_within_layers, k1, ticket)
  random_prune = _map_replicas(
      lambda k, m: random_masks.random_with_counts(
          k, m, random_masks.layer_counts(m)), k2, ticket)
  counts = smart_ratio_layer_counts(s, ticket, density)
  smart = _map_replicas(
      lambda k, m: random_masks.random_with_counts(
          k, m, [jnp.int32(c) for c in counts]), k3, ticket)
  return {"random_prune": random_prune, "shuffle": shuffled,
          "smart_ratio": smart}


def small_dense_width(cfg: ml_collections.ConfigDict, data, target: int
                      ) -> tuple[float, int]:
  """Width multiplier whose dense prunable count is closest to ``target``."""
  def count(width: float) -> int:
    model = models_lib.build(cfg.model.name, common.num_outputs(cfg, data),
                             width,
                             cfg.model.depth or None, cfg.model.residual,
                             input_shape=data.input_shape,
                             **common.model_options(cfg, data))
    shapes = jax.eval_shape(lambda: model.init(
        jax.random.key(0), jnp.zeros((1, *data.input_shape)),
        train=False, **common.context_kwargs(data)))["params"]
    return masks_lib.count(masks_lib.ones(shapes, cfg.masks.prunable))[1]

  lo, hi = 1e-3, cfg.model.width
  for _ in range(30):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if count(mid) <= target else (lo, mid)
  best = min((lo, hi), key=lambda w: abs(count(w) - target))
  return best, count(best)


def reinit_state(s: common.Setup, init: step_lib.TrainState
                 ) -> step_lib.TrainState:
  """Fresh initializations (seed + REINIT_SEED_OFFSET) that keep the
  ticket's data order, so RR differs from the ticket only in theta_0."""
  fresh = s.trainer.init(loop_lib.replica_keys(
      [sd + REINIT_SEED_OFFSET for sd in s.seeds]))
  return fresh.replace(data_key=init.data_key)


def start_state(state: step_lib.TrainState, mask: PyTree,
                trainer: loop_lib.Trainer) -> step_lib.TrainState:
  """``state`` masked, at step 0, with a fresh optimizer."""
  state = state.replace(params=jax.vmap(masks_lib.apply)(state.params, mask),
                        step=jnp.zeros_like(state.step), mask=mask)
  return trainer.restart(common.copy_tree(state))


@dataclasses.dataclass
class Round:
  """One round of seeds: IMP at every LR x seed and the controls at
  ``levels``. Round 0 runs in the workdir itself, adaptive round i in
  ``WORKDIR/rounds/round_i``."""
  setup: common.Setup
  outcome: imp.Outcome
  evals: dict  # evals[setting][level] = Evaluation on setup.axis
  widths: dict  # small-dense width per checked level
  levels: list[int]


def run_round(cfg: ml_collections.ConfigDict, wd: Workdir, levels: list[int],
              progress: bool) -> Round:
  """IMP for every LR x seed (one program), then at each of ``levels``
  the controls (one program per sparsity) and the small-dense net, every
  stage resumable (:func:`common.train_stage`)."""
  s = common.setup(cfg, lrs=tuple(cfg.sanity.lrs))
  outcome = imp.run_levels(s, wd, progress)
  evals = {"ticket": {level: row["evaluation"]
                      for level, row in enumerate(outcome.rows)},
           "dense": {level: outcome.rows[0]["evaluation"]
                     for level in range(len(outcome.rows))}}
  init, dense = outcome.init, outcome.dense
  fresh = reinit_state(s, init)
  from_init = lambda m: start_state(init, m, s.trainer)
  ones = common.dense_masks(cfg, init.params)
  widths = {}
  for level in levels:
    ticket = jax.device_put(outcome.masks[level])
    density = float(np.mean(masks_lib.replica_densities(ticket)))
    key = jax.random.fold_in(jax.random.key(cfg.seed), level)
    controls = control_masks(s, ticket, key, density)
    omp_fraction, omp_special = imp.level_fractions(cfg, level, "oneshot")
    omp_mask = imp.prune_masks(s, dense.params, ones, omp_fraction,
                               omp_special)
    omp_state = imp.rewind(cfg, dense, init, outcome.at_k, omp_mask,
                           s.trainer)
    groups = [("random_reinit", ticket, start_state(fresh, ticket, s.trainer))]
    groups += [(name, m, from_init(m)) for name, m in controls.items()]
    if int(np.asarray(omp_state.step)[0]) == 0:
      groups.append(("omp", omp_mask, omp_state))
      rest = []
    else:
      rest = [("omp", omp_mask, omp_state)]
    for batch in (groups, rest):
      if batch:
        train_group(s, wd, level, batch, evals, progress)
    # The small-dense net: its own (narrower) program.
    kept = int(np.round(np.mean(jax.vmap(masks_lib.count)(ticket)[0])))
    width, count = small_dense_width(cfg, s.data, kept)
    widths[level] = {"width": width, "weights": count, "ticket_weights": kept}
    train_small_dense(cfg, wd, level, width, evals, progress)
  return Round(s, outcome, evals, widths, list(levels))


def round_config(cfg: ml_collections.ConfigDict, seeds_before: int,
                 seeds: int, levels: list[int], lrs: list[float]
                 ) -> ml_collections.ConfigDict:
  """The config of an adaptive round: ``seeds`` new seeds (after the
  ``seeds_before`` already used), only the learning rates ``lrs``, IMP
  only as deep as the deepest of ``levels``, controls only there."""
  c = cfg.copy_and_resolve_references()
  c.seed, c.seeds = cfg.seed + seeds_before, seeds
  c.sanity.seeds = seeds
  c.sanity.lrs = tuple(float(lr) for lr in lrs)
  c.imp.levels = max(levels)
  c.sanity.levels = tuple(levels)
  return c


def merged_tables(rounds: list[Round], level: int, checked: bool) -> dict:
  """``tables[setting][lr] = {"val", "test"}`` per-seed arrays at ``level``
  over the rounds that checked it (``checked``: a verdict compares the
  same seeds in every setting at an LR) or, for the accuracy rows, every
  round whose IMP reached it. Adaptive rounds may cover only some LRs, so
  LRs can differ in their number of seeds."""
  use = [r for r in rounds if (level in r.levels if checked
                               else level < len(r.outcome.rows))]
  out = {}
  for part in (_tables(r.evals, level, r.setup.axis) for r in use):
    for name, by_lr in part.items():
      for lr, splits in by_lr.items():
        into = out.setdefault(name, {}).setdefault(lr, {})
        for split, values in splits.items():
          into[split] = np.concatenate([into.get(split, values[:0]), values])
  return out


def judge_levels(cfg: ml_collections.ConfigDict, rounds: list[Round],
                 levels: list[int], crit: verdict_lib.Criteria) -> dict:
  """``{level: verdict with its confidence}`` from every round that
  checked the level; ``seeds`` counts those behind the judged ticket's LR,
  ``seeds_per_lr`` every LR's."""
  out = {}
  first = rounds[0]
  for level in levels:
    density = first.outcome.rows[level]["density"]
    tables = merged_tables(rounds, level, checked=True)
    v = verdict_lib.judge(tables, 1 - density, crit)
    v["confidence"] = verdict_lib.confidence(
        tables, 1 - density, crit, v, cfg.sanity.resamples, cfg.seed + level)
    v["outcome"] = v["confidence"]["outcome"]
    per_lr = {float(lr): len(t["test"]) for lr, t in tables["ticket"].items()}
    v["seeds"] = per_lr[v["lr"]]
    v["seeds_per_lr"] = {f"{lr:g}": n for lr, n in per_lr.items()}
    out[level] = {"density": density, "sparsity": 1 - density,
                  "level": level, **v}
  return out


def next_round(cfg: ml_collections.ConfigDict, verdicts: dict
               ) -> tuple[list[int], list[float], int] | None:
  """(levels, LRs, seeds) of the next adaptive round, or None: every
  inconclusive level whose open conditions compare settings at LRs with
  fewer than ``sanity.max_seeds`` seeds, those LRs only, and as many new
  seeds as the least-sampled of them may take (at most
  ``sanity.seeds_per_round``)."""
  levels, lrs, room = [], set(), []
  for level, v in sorted(verdicts.items()):
    if v["confidence"]["decided"] is not False:
      continue
    need = verdict_lib.lrs_to_sample(v["confidence"])
    left = [cfg.sanity.max_seeds - v["seeds_per_lr"][f"{lr:g}"]
            for lr in need]
    if need and max(left) > 0:
      levels.append(level)
      lrs |= set(need)
      room.append(max(left))
  if not levels:
    return None
  return levels, sorted(lrs), min(cfg.sanity.seeds_per_round, max(room))


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> SanitySummary:
  """The whole sanity check; writes the workdir and returns the summary.

  Round 0 runs ``sanity.seeds`` seeds at every LR. While some checked
  sparsity is inconclusive (an open condition could change its class), an
  adaptive round adds up to ``sanity.seeds_per_round`` new seeds, at those
  sparsities only and only at the LRs their open conditions compare (IMP
  to the deepest of them, then their controls; one program per stage),
  until each is decided or its LRs have ``sanity.max_seeds`` seeds."""
  validate(cfg)  # before touching the workdir
  if cfg.sanity.seeds:
    cfg = cfg.copy_and_resolve_references()
    cfg.seeds = cfg.sanity.seeds
  wd, done = common.open_run(cfg, workdir, "sanity", SanitySummary)
  if done is not None:
    return done
  t0 = time.time()
  crit = criteria(cfg)
  cfg, auto = imp.resolve_rewind_step(cfg, wd, progress)
  rounds = [run_round(cfg, wd, checked_levels(cfg), progress)]
  verdicts = judge_levels(cfg, rounds, checked_levels(cfg), crit)
  used = cfg.seeds  # seed values taken so far (each round takes new ones)
  while (plan := next_round(cfg, verdicts)) is not None:
    levels, lrs, add = plan
    rcfg = round_config(cfg, used, add, levels, lrs)
    rwd = Workdir(wd.file("rounds", f"round_{len(rounds)}"), "sanity_round")
    rwd.claim(rcfg, config_lib.default_config())
    tqdm.write(f"round {len(rounds)}: sparsities "
               + ", ".join(f"{100 * verdicts[l]['sparsity']:.1f}%"
                           for l in levels)
               + f" are inconclusive; {add} more seeds there at LR "
               + ", ".join(f"{lr:g}" for lr in lrs)
               + f" (at most {cfg.sanity.max_seeds} per LR).", file=sys.stderr)
    rounds.append(run_round(rcfg, rwd, levels, progress))
    verdicts.update(judge_levels(cfg, rounds, levels, crit))
    used += add

  first = rounds[0]
  summary = summarize(cfg, rounds, verdicts, crit)
  summary["diagnostics"] = why_it_wins(cfg, first.setup, wd, first.outcome)
  summary["diverged"] = [{"level": r["level"], **d} for rd in rounds
                         for r in rd.outcome.rows for d in r["diverged"]]
  if auto:
    summary["auto_rewind"] = auto
  summary["wall_time_s"] = round(time.time() - t0, 2)
  summary = SanitySummary(**summary)
  report.write_sanity_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(SanitySummary)


def command(cfg: ml_collections.ConfigDict, args) -> SanitySummary:
  """``jaxticket sanity``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: SanitySummary) -> str:
  return (report.verdict_table(summary.verdicts) + "\n\n"
          + report.confidence_lines(summary.verdicts) + "\n\n"
          + summary.conclusion)


def train_group(s: common.Setup, wd: Workdir, level: int,
                group: list[tuple[str, PyTree, step_lib.TrainState]],
                evals: dict, progress: bool) -> None:
  """Train several settings as one program (settings x LRs x seeds)."""
  names = [g[0] for g in group]
  axis = s.axis.outer("setting", names)
  masks = _stack([g[1] for g in group])
  state = _stack([g[2] for g in group])
  hp = jax.tree.map(lambda x: jnp.tile(x, len(group)), s.hparams)
  _, row = common.train_stage(
      s, wd, f"level_{level}_{'+'.join(names)}", level, state, masks, hp,
      s.trainer, progress=progress, seeds=s.seeds * len(group),
      lrs=s.lrs * len(group),
      desc=f"level {level} controls ({', '.join(names)})",
      extra={"settings": "+".join(names)})
  for name, idx in axis.groups("setting").items():
    evals.setdefault(name, {})[level] = axis.take(row["evaluation"], idx)


def train_small_dense(cfg: ml_collections.ConfigDict, wd: Workdir,
                      level: int, width: float, evals: dict,
                      progress: bool) -> None:
  """Train the small-dense network of one sparsity at every LR x seed."""
  narrow = cfg.copy_and_resolve_references()
  narrow.model.width = width
  s = common.setup(narrow, lrs=tuple(cfg.sanity.lrs))
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  mask = common.dense_masks(cfg, state.params)
  _, row = common.train_stage(
      s, wd, f"level_{level}_small_dense", level, state, mask, s.hparams,
      s.trainer, progress=progress,
      desc=f"level {level} small dense (width {width:.3f})",
      extra={"settings": "small_dense"})
  evals.setdefault("small_dense", {})[level] = row["evaluation"]


def _tables(evals: dict, level: int, axis: ReplicaAxis) -> dict:
  """``tables[setting][lr] = {"val", "test"}`` per-seed arrays at a level
  (every setting's evaluations lie on the lr x seed ``axis``)."""
  out = {}
  for name, by_level in evals.items():
    if level not in by_level:
      continue
    ev = by_level[level]
    out[name] = {lr: {"val": np.asarray(ev.val_accuracy)[idx],
                      "test": np.asarray(ev.test_accuracy)[idx]}
                 for lr, idx in axis.groups("lr").items()}
  return out


def selective_rows(cfg: ml_collections.ConfigDict, first: Round
                   ) -> list[dict]:
  """Selective classification per (lr, level) and setting from round 0's
  seeds (every LR and level): test AURC ranking by the task's own score
  (the abstain output under ``task.loss=gambler``, else the softmax
  response), AURC by the softmax response, and the mean risk at each of
  ``selective.COVERAGES`` (the coverage-risk curve). Empty for a task
  without confidences (regression)."""
  axis = first.setup.axis
  rows = []
  for level, imp_row in enumerate(first.outcome.rows):
    for lr, idx in axis.groups("lr").items():
      row = {"lr": float(lr), "level": level, "density": imp_row["density"]}
      for name in SETTINGS:
        ev = first.evals.get(name, {}).get(level)
        if ev is None:
          continue
        own = np.asarray(ev.test_aurc)[idx]
        if not np.isfinite(own).any():
          return []
        risk = np.asarray(ev.test_risk)[idx]
        row[name] = {
            "aurc": common.stats(own),
            "aurc_softmax": common.stats(np.asarray(ev.test_aurc_softmax)[idx]),
            "risk": [float(v) for v in np.nanmean(risk, axis=0)]}
      rows.append(row)
  return rows


def summarize(cfg, rounds: list[Round], verdicts: dict,
              crit: verdict_lib.Criteria) -> dict:
  """summary.json of ``sanity`` (schema in the README)."""
  lrs = [float(x) for x in cfg.sanity.lrs]
  first = rounds[0]
  rows = []
  for level, imp_row in enumerate(first.outcome.rows):
    density = imp_row["density"]
    tables = merged_tables(rounds, level, checked=level in verdicts)
    for lr in lrs:
      row = {"lr": lr, "level": level, "density": density}
      for name in SETTINGS:
        if name in tables:
          row[name] = common.stats(tables[name][lr]["test"])
          row[name + "_val"] = common.stats(tables[name][lr]["val"])
      rows.append(row)
  out = [{**verdicts[level], "small_dense": first.widths[level]}
         for level in sorted(verdicts)]
  pick = lambda klass, decided: [
      v["sparsity"] for v in out if v["class"] == klass and (
          not decided or v["outcome"] == klass)]
  jack, sec = pick("jackpot", False), pick("secondary", False)
  sure_jack, sure_sec = pick("jackpot", True), pick("secondary", True)
  seeds = sorted({sd for r in rounds for sd in r.setup.axis.levels("seed")})
  return {"rows": rows, "verdicts": out,
          "largest_jackpot_sparsity": max(jack) if jack else None,
          "largest_secondary_sparsity": max(sec) if sec else None,
          "largest_decided_jackpot_sparsity": max(sure_jack) if sure_jack
          else None,
          "largest_decided_secondary_sparsity": max(sure_sec) if sure_sec
          else None,
          "conclusion": verdict_lib.conclusion(out, crit),
          "criteria": dataclasses.asdict(crit),
          "lrs": lrs, "seeds": seeds,
          "rounds": [{"seeds": list(r.setup.axis.levels("seed")),
                      "lrs": list(r.setup.axis.levels("lr")),
                      "levels": r.levels} for r in rounds],
          "overlap_top": cfg.sanity.overlap_top,
          "selective": selective_rows(cfg, first),
          "selective_score": ("abstain" if cfg.task.loss == "gambler"
                              else "softmax"),
          "coverages": list(selective.COVERAGES),
          "task": {"loss": cfg.task.loss, "payoff": cfg.task.payoff,
                   "pretrain_steps": cfg.task.pretrain_steps},
          "model": cfg.model.name, "dataset": cfg.data.name,
          "rewind": cfg.imp.rewind, "rewind_step": cfg.imp.rewind_step}


def why_it_wins(cfg: ml_collections.ConfigDict, s: common.Setup, wd: Workdir,
                outcome: imp.Outcome) -> list[dict]:
  """Init/final correlation (Liu et al. 2021) and top-p% overlap (Ma et al.
  2021, App. G) per layer, for the dense net and the ticket at each checked
  level, per LR (mean/std over seeds). The "initial" weights are the rewind
  point the ticket restarts from (theta_0 or theta_k)."""
  start = jax.device_get(
      (outcome.at_k if cfg.imp.rewind == "step" else outcome.init).params)
  out = []
  for level in [0] + checked_levels(cfg):
    trained = imp.load_level(wd.path, level)
    mask = outcome.masks[level]
    per_replica = [diagnostics.layer_diagnostics(
        loop_lib.tree_index(start, r), loop_lib.tree_index(
            trained["params"], r), loop_lib.tree_index(mask, r),
        cfg.sanity.overlap_top) for r in range(len(s.seeds))]
    for lr, idx in s.axis.groups("lr").items():
      reps = [per_replica[i] for i in idx]
      layers = {name: {k: common.stats([r[name][k] for r in reps])
                       for k in ("correlation", "overlap")}
                for name in reps[0]}
      out.append({
          "lr": float(lr), "level": level,
          "setting": "dense" if level == 0 else "ticket",
          "density": outcome.rows[level]["density"], "layers": layers,
          "mean_correlation": common.stats(
              [np.nanmean([v["correlation"] for v in r.values()])
               for r in reps]),
          "mean_overlap": common.stats(
              [np.nanmean([v["overlap"] for v in r.values()]) for r in reps]),
      })
  return out


def validate(cfg: ml_collections.ConfigDict) -> None:
  """The whole config, for a sanity check."""
  config_lib.validate(cfg)
  settings.validate(cfg)
