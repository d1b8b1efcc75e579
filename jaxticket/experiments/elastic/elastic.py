"""Elastic lottery tickets (Chen et al., NeurIPS 2021), vectorized.

IMP runs once on the *source* depth of a residual family (``imp`` through
the registry, in ``WORKDIR/source``). For every target depth and every
level of ``elastic.levels``, the source ticket's mask AND the weights IMP
rewinds to (theta_0, or theta_k with BatchNorm statistics for
``imp.rewind=step``) are carried to the target network by a block mapping
(:mod:`jaxticket.models.block_mapping`: stem and head copied, the
first block of each stage kept, the other blocks replicated or dropped;
the authors' ``change_depth`` branch, lottery/branch/morphism.py). The
transformed ticket trains with the source's recipe from the source's
rewind step (their ``start_step = train_start_step``), next to:

- ``shuffle``: its mask shuffled within every layer, on the same carried
  weights and step (is it the positions or the layer densities?);
- ``random``: uniformly random masks with its per-layer counts on the
  target's own theta_0 from step 0 (random pruning at the same layer-wise
  sparsity, Chen et al. Sec. 4; Su et al. 2020's random tickets);
- ``pai``: ``elastic.pai_method`` (SNIP by default, ``jaxticket pai``'s
  methods) at the transformed ticket's density, target theta_0, step 0;
- ``copy_shuffle``: only the masks of the second and later copies of a
  replicated block shuffled within layers (the authors' ``permute_copy``
  option; targets that replicate nothing leave it out);
- ``twin``: the transformed ticket with another data order (its barrier
  to the ticket is the authors' stability check).

All of them (methods x levels x seeds) are ONE replica axis of one program
per target depth (:func:`common.train_stage`, resumable). IMP run directly
on each target (``WORKDIR/target_D``) is the reference; the error barrier
between the trained transformed ticket and the trained target IMP ticket
of the same level and seed uses ``lmc.Connectivity`` (``lmc`` section:
alphas, BatchNorm re-estimation). Where we differ from the authors: their
connectivity branch measures two copies of the transformed ticket trained
with different data orders (its stability); the issue asks for the barrier
to the target's IMP ticket, which starts from another initialization, so a
large barrier is expected there and is reported as a measurement, not a
verdict.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import stats as scipy_stats

from jaxticket import config as config_lib
from jaxticket import models as models_lib
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import ConfigError, check_choice
from jaxticket.core.replicas import ReplicaAxis, concat
from jaxticket.core.stats import stats
from jaxticket.core.workdir import Workdir, write_json
from jaxticket.experiments import common, registry
from jaxticket.models import block_mapping as mapping_lib
from jaxticket.experiments.elastic import report
from jaxticket.experiments.elastic import settings
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.summaries import ElasticSummary, ImpSummary
from jaxticket.pruning import controls

PyTree = Any
#: Methods that train the carried (source rewind) weights.
CARRIED = ("elastic", "shuffle", "copy_shuffle", "twin")
#: Noise seed of the ``twin`` replicas' data order (folded into the key).
TWIN_NOISE = 7919


# --------------------------------------------------------------------------
# Depths, block counts and mappings (no compute: modules only).


def source_depth(cfg: ml_collections.ConfigDict) -> int:
  """``elastic.source_depth`` or, when 0, ``model.depth``."""
  return cfg.elastic.source_depth or cfg.model.depth


def depth_config(cfg: ml_collections.ConfigDict, depth: int
                 ) -> ml_collections.ConfigDict:
  """``cfg`` for the network of ``depth`` (IMP only to the deepest level
  elastic transforms)."""
  out = cfg.copy_and_resolve_references()
  out.model.depth = depth
  out.imp.levels = max(cfg.elastic.levels)
  return out


def structure(cfg: ml_collections.ConfigDict, depth: int, key: str
              ) -> tuple[int, int]:
  """(stages, blocks per stage) of the model at ``depth``."""
  try:
    model = models_lib.build(cfg.model.name, 10, cfg.model.width,
                             depth or None, cfg.model.residual)
  except ValueError as e:
    raise ConfigError(f"{key}={depth}: {e}") from None
  return len(model.stage_widths), int(model.blocks_per_stage)


def mappings(cfg: ml_collections.ConfigDict
             ) -> dict[int, tuple[mapping_lib.StageMapping, ...]]:
  """The checked mapping of every target depth."""
  e = cfg.elastic
  stages, n_src = structure(cfg, source_depth(cfg), "elastic.source_depth")
  out = {}
  for depth in e.target_depths:
    _, n_dst = structure(cfg, depth, "elastic.target_depths")
    if e.mapping:
      m = mapping_lib.parse(e.mapping, stages)
    else:
      m = (mapping_lib.strategy_mapping(e.strategy, n_src, n_dst),) * stages
    mapping_lib.check(m, n_src, n_dst,
                      "elastic.mapping" if e.mapping else
                      f"elastic.strategy={e.strategy} to depth {depth}")
    out[depth] = m
  return out


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Everything that can be checked before any compute."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  if "pai" in cfg.elastic.methods:
    pai = registry.load("pai")
    check_choice("elastic.pai_method", cfg.elastic.pai_method,
                 pai.methods_lib.METHODS, "pai method")
  mappings(cfg)


# --------------------------------------------------------------------------
# Carrying a ticket (the mapping on trees with a replica axis).


def carry(tree: dict, m, n_src: int, n_dst: int, like: dict) -> dict:
  """``tree`` mapped to the target and checked leaf by leaf against
  ``like`` (same structure and per-replica shapes)."""
  out = mapping_lib.transform(tree, m, n_src, n_dst, like)
  is_none = lambda x: x is None
  if jax.tree.structure(out, is_leaf=is_none) != jax.tree.structure(
      like, is_leaf=is_none):
    raise ConfigError("the carried tree does not have the target's layers; "
                      "source and target must share model.name and width.")
  for a, b in zip(jax.tree.leaves(out, is_leaf=is_none),
                  jax.tree.leaves(like, is_leaf=is_none)):
    if (a is None) != (b is None) or (a is not None and
                                      np.shape(a) != np.shape(b)):
      raise ConfigError("a carried layer's shape differs from the target's; "
                        "source and target must share model.name and width.")
  return out


def rewind_state(init, params, batch_stats, step, mask, trainer):
  """A stacked target state at ``step`` with these weights, masked, with a
  fresh optimizer (as IMP's rewinding)."""
  st = init.replace(
      params=jax.device_put(params), batch_stats=jax.device_put(batch_stats),
      step=jnp.asarray(np.broadcast_to(np.asarray(step), init.step.shape),
                       init.step.dtype))
  st = st.replace(params=jax.vmap(masks_lib.apply)(st.params, mask),
                  mask=mask)
  return trainer.restart(common.copy_tree(st))


def method_key(cfg, depth: int, level: int, name: str, n: int) -> jax.Array:
  k = jax.random.fold_in(jax.random.key(cfg.seed), depth)
  k = jax.random.fold_in(k, level)
  k = jax.random.fold_in(k, settings.METHODS.index(name))
  return jax.random.split(k, n)


def pai_masks(cfg, s: common.Setup, init, densities: np.ndarray,
              keys: jax.Array) -> PyTree:
  """``elastic.pai_method``'s masks on the target's theta_0, replica r at
  ``densities[r]`` (``jaxticket pai``'s method registry). The method is
  given ONE replica's *dense* mask as the structure (a sparse one would
  restrict every replica to replica 0's kept weights)."""
  pai = registry.load("pai")
  method = pai.methods_lib.METHODS[cfg.elastic.pai_method]
  one = masks_lib.ones(loop_lib.tree_index(init.params, 0),
                       cfg.masks.prunable)
  batches = None
  if method.data_dependent:
    x, y = pai.scoring.stacked(s.data, s.seeds, "clean",
                               cfg.pai.score_examples, cfg.pai.score_balanced)
    batches = (jnp.asarray(x), jnp.asarray(y))
  task = pai.methods_lib.MaskTask(
      cfg=cfg, prog=s.trainer.prog, params=init.params,
      batch_stats=init.batch_stats, mask=one,
      densities=np.asarray(densities, np.float64), keys=keys,
      batches=batches, paths=pai.forward_order(s, one),
      input_shape=tuple(s.data.input_shape), data=s.data)
  return jax.device_get(method.build(task))


# --------------------------------------------------------------------------
# Statistics.


def ci_stats(values, valid=None, level: float = 0.95) -> dict:
  """mean, std, per-seed values and a Student-t CI of the mean."""
  out = stats(values, valid)
  kept = np.asarray(values, np.float64)
  if valid is not None:
    kept = kept[np.asarray(valid)]
  n = kept.size
  out["ci_low"] = out["ci_high"] = None
  if n >= 2:
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * float(
        kept.std(ddof=1)) / math.sqrt(n)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
  elif n == 1:
    out["ci_low"] = out["ci_high"] = out["mean"]
  return out


def from_imp_row(row: dict) -> dict:
  """A target IMP level row -> accuracy stats with CIs."""
  out = {}
  for split in ("test_accuracy", "val_accuracy"):
    per = row[split]["per_seed"]
    ok = np.array([v is not None for v in per])
    out[split] = ci_stats(np.array([np.nan if v is None else v for v in per]),
                          ok)
  return out


# --------------------------------------------------------------------------
# One target depth.


def build_replicas(cfg, s: common.Setup, init, carried: dict, weights,
                   batch_stats, step, methods: list[str], levels: list[int],
                   depth: int, copied: list[str] = ()):
  """The stacked start states and masks of every (method, level, seed),
  method-major: ``elastic`` = the carried mask on the carried weights at
  the source's rewind ``step``; ``shuffle`` = that mask shuffled within
  layers, same weights and step; ``copy_shuffle`` = only the masks of the
  ``copied`` blocks (second and later copies) shuffled; ``twin`` = the
  ticket with another data order; ``random`` = random masks with its
  per-layer counts, ``pai`` = the PaI method at its density, both on the
  target's ``init`` at step 0."""
  n = len(s.seeds)
  states, masks = [], []
  for name in methods:
    for l in levels:
      ticket = jax.device_put(carried[l])
      keys = method_key(cfg, depth, l, name, n)
      if name in ("elastic", "twin"):
        mask = ticket
      elif name == "shuffle":
        mask = loop_lib.vmapped(controls.shuffle_within_layers)(keys, ticket)
      elif name == "copy_shuffle":  # only the replicated copies shuffled
        shuffled = loop_lib.vmapped(controls.shuffle_within_layers)(keys,
                                                                    ticket)
        mask = {k: shuffled[k] if k in copied else v
                for k, v in ticket.items()}
      elif name == "random":
        mask = loop_lib.vmapped(lambda k, t: controls.random_with_counts(
            k, t, controls.layer_counts(t)))(keys, ticket)
      else:  # pai
        mask = jax.device_put(pai_masks(
            cfg, s, init, masks_lib.replica_densities(ticket), keys))
      if name in CARRIED:  # the carried weights at the source's step
        st = rewind_state(init, weights, batch_stats, step, mask, s.trainer)
      else:  # the target's own theta_0 at step 0
        st = rewind_state(init, init.params, init.batch_stats, 0, mask,
                          s.trainer)
      if name == "twin":  # another data order
        st = st.replace(data_key=jax.vmap(jax.random.fold_in)(
            st.data_key, jnp.full((n,), TWIN_NOISE, jnp.uint32)))
      states.append(st)
      masks.append(mask)
  return concat(states), concat(masks)


def run_target(cfg, wd: Workdir, depth: int, m, n_src: int, src: dict,
               progress: bool) -> tuple[list[dict], list[dict], dict]:
  """Train the transformed tickets and their controls at ``depth`` (one
  program), IMP on the target, and the barriers; returns (rows, barriers,
  target info)."""
  e = cfg.elastic
  imp = registry.load("imp")
  tcfg = depth_config(cfg, depth)
  stages, n_dst = structure(cfg, depth, "elastic.target_depths")
  s = common.setup(tcfg)
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  ones = common.dense_masks(tcfg, init.params)
  weights = carry(src["params"], m, n_src, n_dst, init.params)
  stats_ = carry(src["batch_stats"], m, n_src, n_dst, init.batch_stats)
  levels = list(e.levels)
  copied = mapping_lib.copies(m, n_dst)
  # copy_shuffle == elastic when nothing is replicated: left out then
  methods = [x for x in e.methods if x != "copy_shuffle" or copied]
  seeds = s.seeds
  n = len(seeds)
  axis = ReplicaAxis.of(method=methods, level=levels, seed=seeds)
  groups = len(methods) * len(levels)
  stage = f"depth_{depth}"
  st = Stages(wd)
  clock = time.time()
  timings = {}
  if st.get(stage) is not None and st.get(
      f"barrier_depth_{depth}") is not None:  # all done: nothing to build
    trained, row = None, common.row_from_json(st.get(stage))
  else:
    carried = {l: carry(src["masks"][l], m, n_src, n_dst, ones)
               for l in levels}
    state, mask = build_replicas(cfg, s, init, carried, weights, stats_,
                                 src["step"], methods, levels, depth,
                                 copied)
    timings["masks_s"] = round(time.time() - clock, 2)
    clock = time.time()
    hp = jax.tree.map(lambda x: jnp.tile(x, groups), s.hparams)
    write_json(wd.file(f"replicas_depth_{depth}.json"), axis.labels())
    trained, row = common.train_stage(
        s, wd, stage, max(levels), state, mask, hp, s.trainer,
        progress=progress, seeds=seeds * groups, lrs=s.lrs * groups,
        desc=f"depth {depth}: {', '.join(methods)}", extra={"depth": depth},
        keep_state=e.target_imp or "twin" in methods)
    timings["training_s"] = round(time.time() - clock, 2)
  ev = row["evaluation"]
  valid = np.ones(axis.size, bool)
  for d in row["diverged"]:  # diverged replicas are left out of the means
    valid[d["replica"]] = False
  dens = np.asarray(row["density_per_seed"])
  rows = []
  for name in methods:
    for l in levels:
      idx = axis.index(method=name, level=l)
      rows.append({
          "depth": depth, "method": name, "level": l,
          "density": float(np.mean(dens[idx])),
          "density_per_seed": [float(d) for d in dens[idx]],
          "test_accuracy": ci_stats(ev.test_accuracy[idx], valid[idx]),
          "val_accuracy": ci_stats(ev.val_accuracy[idx], valid[idx])})
  info = {"depth": depth, "stages": stages, "blocks_per_stage": n_dst,
          "mapping": mapping_lib.format_mapping(m), "replicas": axis.size,
          "methods": methods, "copied_blocks": copied,
          # traces of the training program in this process (1: every
          # method, level and seed in one program; 0: read back on resume)
          "run_traces": int(s.trainer.traces["run"])}
  tdir = None
  if e.target_imp:
    tdir = wd.file(f"target_{depth}")
    clock = time.time()
    tsum = imp.run(tcfg, tdir, progress=progress)
    timings["target_imp_s"] = round(time.time() - clock, 2)
    dense = tsum.levels[0]
    rows.append({"depth": depth, "method": "dense", "level": 0,
                 "density": 1.0, "density_per_seed": [1.0] * n,
                 **from_imp_row(dense)})
    for l in levels:
      r = tsum.levels[l]
      rows.append({"depth": depth, "method": "imp", "level": l,
                   "density": r["density"],
                   "density_per_seed": r["density_per_seed"],
                   **from_imp_row(r)})
  clock = time.time()
  barriers = target_barriers(cfg, wd, s, depth, levels, axis, trained, tdir,
                             imp)
  timings["barriers_s"] = round(time.time() - clock, 2)
  info["timings_s"] = timings  # this process's (a resumed part reads 0)
  return rows, barriers, info


def target_barriers(cfg, wd, s, depth, levels, axis, trained, tdir, imp
                    ) -> list[dict]:
  """Error barriers of the trained transformed ticket, per (level, seed):
  to the trained target IMP ticket (``tdir``, None = no target IMP) and,
  with the ``twin`` method, to its twin trained with another data order
  (the authors' stability measurement). All pairs in one program."""
  st = Stages(wd)
  name = f"barrier_depth_{depth}"
  done = st.get(name)
  if done is not None:
    return done
  lmc = registry.load("lmc")
  el = np.concatenate([axis.index(method="elastic", level=l) for l in levels])
  take = lambda idx: (axis.take(trained.params, idx),
                      axis.take(trained.batch_stats, idx))
  firsts, seconds, kinds = [], [], []
  if tdir is not None:
    saved = [imp.load_level(tdir, l) for l in levels]
    firsts.append(take(el))
    seconds.append((concat([jax.device_put(x["params"]) for x in saved]),
                    concat([jax.device_put(x["batch_stats"]) for x in saved])))
    kinds.append("")
  if "twin" in axis.levels("method"):
    tw = np.concatenate([axis.index(method="twin", level=l) for l in levels])
    firsts.append(take(el))
    seconds.append(take(tw))
    kinds.append("twin_")
  if not kinds:
    return st.put(name, [])
  conn = lmc.make_connectivity(s)
  curves = conn(concat(firsts), concat(seconds))
  test_b = lmc.barrier(curves.test_error)
  train_b = lmc.barrier(curves.train_error)
  n, per = len(s.seeds), len(levels) * len(s.seeds)
  out = []
  for i, l in enumerate(levels):
    row = {"depth": depth, "level": l, "test_barrier": None,
           "train_barrier": None,
           "alphas": [float(x) for x in np.asarray(conn.alphas)]}
    for j, kind in enumerate(kinds):
      sl = slice(j * per + i * n, j * per + (i + 1) * n)
      row[f"{kind}test_barrier"] = ci_stats(test_b[sl])
      row[f"{kind}train_barrier"] = ci_stats(train_b[sl])
      row[f"{kind}test_error_curve"] = [float(x) for x in np.asarray(
          curves.test_error[sl]).mean(0)]
    out.append(row)
  return st.put(name, out)


# --------------------------------------------------------------------------
# The command.


def load_source(cfg, wd: Workdir, progress: bool) -> tuple[dict, ImpSummary]:
  """IMP on the source depth (a registry sub-run in ``WORKDIR/source``);
  returns its rewind weights, per-level masks and summary."""
  imp = registry.load("imp")
  scfg = depth_config(cfg, source_depth(cfg))
  sdir = wd.file("source")
  summary = imp.run(scfg, sdir, progress=progress)
  src = imp.rewind_weights(scfg, sdir)
  src["masks"] = {l: imp.load_level(sdir, l)["mask"]
                  for l in cfg.elastic.levels}
  return src, summary


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> ElasticSummary:
  """The whole experiment; writes the workdir and returns the summary."""
  validate(cfg)  # before touching the workdir
  wd, done = common.open_run(cfg, workdir, "elastic", ElasticSummary)
  if done is not None:
    return done
  t0 = time.time()
  maps = mappings(cfg)
  _, n_src = structure(cfg, source_depth(cfg), "elastic.source_depth")
  src, src_summary = load_source(cfg, wd, progress)
  source_s = round(time.time() - t0, 2)
  rows, barriers, targets = [], [], []
  source_rows = [{"level": r["level"], "density": r["density"],
                  **from_imp_row(r)} for r in src_summary.levels]
  for depth in cfg.elastic.target_depths:
    r, b, info = run_target(cfg, wd, depth, maps[depth], n_src, src,
                            progress)
    rows += r
    barriers += b
    targets.append(info)
  summary = ElasticSummary(
      source_depth=source_depth(cfg), source_blocks_per_stage=n_src,
      source=source_rows, targets=targets, rows=rows, barriers=barriers,
      methods=list(cfg.elastic.methods), pai_method=cfg.elastic.pai_method,
      levels=list(cfg.elastic.levels), strategy=cfg.elastic.strategy,
      seeds=[cfg.seed + i for i in range(cfg.seeds)], model=cfg.model.name,
      dataset=cfg.data.name, rewind=cfg.imp.rewind,
      rewind_step=cfg.imp.rewind_step,
      wall_time_s=round(time.time() - t0, 2), source_imp_s=source_s)
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(ElasticSummary)


def command(cfg: ml_collections.ConfigDict, args) -> ElasticSummary:
  """``jaxticket elastic``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: ElasticSummary) -> str:
  return report.table(summary)


__all__ = ["run", "command", "console", "mappings", "carry", "validate",
           "depth_config", "structure", "ci_stats"]
