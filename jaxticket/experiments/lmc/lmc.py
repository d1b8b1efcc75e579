"""Linear mode connectivity (LMC) and instability analysis, vectorized.

Frankle, Dziugaite, Roy & Carbin (ICML 2020), "Linear Mode Connectivity and
the Lottery Ticket Hypothesis": train two copies of a network from the same
weights theta_k (iteration k) with different SGD noise (data order,
augmentation), then evaluate the networks on the straight line between the
two solutions. The *error barrier* is the largest error along the line minus
the mean of the endpoints' errors; the network is *stable* at k when the
barrier is ~0. IMP finds matching tickets when it rewinds to a k at which the
(sparse) network is already stable.

Evci, Ioannou, Keskin & Dauphin (AAAI 2022), "Gradient Flow in Sparse Neural
Networks and How Lottery Tickets Win": a retrained ticket lands in the basin
of the pruned solution it came from (low barrier between them), a random
re-initialization of the same mask does not.

Everything is on array axes: children x rewind steps x seeds train as one
program (:class:`~jaxticket.core.loop.Trainer` with staggered starts), and the
paths of all pairs are evaluated in one program with the interpolation
coefficient alpha vmapped. Interpolated networks with BatchNorm get their
statistics re-estimated on training batches at every alpha (the running
averages of the endpoints do not describe the interpolated net; without
re-estimation barriers are artefacts).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket.core import checkpoint
from jaxticket import config as config_lib
from jaxticket.experiments.imp import imp
from jaxticket.experiments.lmc import settings
from jaxticket.experiments.summaries import LmcSummary
from jaxticket.experiments import common
from jaxticket.core import masks as masks_lib
from jaxticket.experiments.lmc import report
from jaxticket.data import Dataset
from jaxticket.models.layers import BN_MOMENTUM
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.workdir import (Workdir, config_json, diff, fill_missing,
                                    read_json)
from jaxticket.core import loop as loop_lib
from jaxticket.core import step as step_lib

PyTree = Any

#: Seed offset of the random re-initializations of the ticket's mask
#: (Evci et al.'s "scratch" networks).
SCRATCH_SEED_OFFSET = 20_000
#: The resumable stage that trains the children (and scratch networks).
CHILDREN_STAGE = "lmc_children"


# --------------------------------------------------------------------------
# Interpolation and barriers (one pair of networks, pure functions).


class PathData(NamedTuple):
  """Arrays a path is evaluated on. ``bn_x`` are training inputs in batches
  [num_batches, batch, ...] for BatchNorm re-estimation; ``train_*`` is the
  (sub)set of training examples the train barrier is measured on."""
  train_x: jax.Array
  train_y: jax.Array
  test_x: jax.Array
  test_y: jax.Array
  bn_x: jax.Array
  #: the data's shared arrays (a graph set's features and edges), if any
  context: PyTree = None


class PathMetrics(NamedTuple):
  """Errors and losses along a path (trailing axis: alpha)."""
  train_error: jax.Array
  train_loss: jax.Array
  test_error: jax.Array
  test_loss: jax.Array


def interpolate(a: PyTree, b: PyTree, alpha: jax.Array) -> PyTree:
  """``(1 - alpha) * a + alpha * b`` leaf by leaf (exactly ``a`` at 0 and
  ``b`` at 1)."""
  return jax.tree.map(lambda x, y: (1 - alpha) * x + alpha * y, a, b)


def reestimate_batch_stats(prog: step_lib.Program, params: PyTree,
                           batch_stats: PyTree, xs: jax.Array) -> PyTree:
  """BatchNorm statistics of ``params`` re-estimated on training batches.

  Each batch of ``xs`` [B, batch, ...] goes through the net in training mode
  (every BN layer normalizes with its batch statistics, as during training)
  and the per-batch means and variances are averaged with equal weights,
  like PyTorch's ``update_bn`` with a cumulative average. Only ``xs`` is
  read: no test data. Nets without BatchNorm return ``batch_stats``.
  """
  if not batch_stats:
    return batch_stats
  zeros = jax.tree.map(jnp.zeros_like, batch_stats)

  def one(xb):
    # From zero running statistics one update leaves (1 - m) * batch_stat.
    _, updated = step_lib.apply_model(prog.model, params, zeros,
                                        prog.normalize(xb), True)
    return updated

  per_batch = jax.lax.map(one, xs)
  return jax.tree.map(lambda s: s.mean(0) / (1.0 - BN_MOMENTUM), per_batch)


def path(prog: step_lib.Program, a: tuple[PyTree, PyTree],
         b: tuple[PyTree, PyTree], alphas: jax.Array, data: PathData,
         reestimate: bool, eval_batch_size: int = 1000) -> PathMetrics:
  """Metrics of the networks on the line from ``a`` to ``b`` at ``alphas``.

  ``a`` and ``b`` are (params, batch_stats) of one replica each. The alpha
  axis is vmapped. With ``reestimate`` the BatchNorm statistics are
  re-estimated on ``data.bn_x`` at every alpha; otherwise the endpoints'
  running statistics are interpolated like the weights.
  """

  def at(alpha):
    params = interpolate(a[0], b[0], alpha)
    stats = interpolate(a[1], b[1], alpha)
    if reestimate:
      stats = reestimate_batch_stats(prog, params, stats, data.bn_x)
    train_loss, train_acc = loop_lib.evaluate(
        prog, params, stats, data.train_x, data.train_y, eval_batch_size,
        data.context)
    test_loss, test_acc = loop_lib.evaluate(
        prog, params, stats, data.test_x, data.test_y, eval_batch_size,
        data.context)
    return PathMetrics(1 - train_acc, train_loss, 1 - test_acc, test_loss)

  return jax.vmap(at)(alphas)


def barrier(curve: np.ndarray | jax.Array) -> np.ndarray:
  """Frankle et al.'s barrier of curves [..., A] measured at alphas from 0
  to 1: the maximum along the path minus the mean of the two endpoints.
  0 for a flat path; never negative (the endpoints are on the path)."""
  curve = np.asarray(curve, np.float64)
  return curve.max(-1) - 0.5 * (curve[..., 0] + curve[..., -1])


def path_data(data: Dataset, train_examples: int, bn_batches: int,
              batch_size: int, seed: int) -> PathData:
  """Fixed subsets of the training data for the train barrier (at most
  ``train_examples``, 0 = all) and for BN re-estimation, drawn with
  ``seed``; the test split whole."""
  rng = np.random.default_rng(seed)
  n = len(data.train_y)
  take = n if train_examples <= 0 else min(n, train_examples)
  idx = np.sort(rng.permutation(n)[:take])
  bn_idx = rng.permutation(n)
  need = bn_batches * batch_size
  bn_idx = np.resize(bn_idx, need)  # wraps around if the set is small
  return PathData(
      jnp.asarray(data.train_x[idx]), jnp.asarray(data.train_y[idx]),
      jnp.asarray(data.test_x), jnp.asarray(data.test_y),
      jnp.asarray(data.train_x[bn_idx].reshape(
          (bn_batches, batch_size) + data.train_x.shape[1:])),
      _device_context(data))


def _device_context(data: Dataset) -> PyTree:
  context = getattr(data, "context", None)
  return None if context is None else jax.tree.map(jnp.asarray, context)


class Connectivity:
  """Compiled evaluation of the linear paths between P pairs of networks.

  Call with stacked (params, batch_stats) of the P first and P second
  endpoints; returns :class:`PathMetrics` of shape [P, A]. Pairs are
  vmapped (or ``lax.map``-ped, the Trainer's replica loop), alphas vmapped.
  """

  def __init__(self, trainer: loop_lib.Trainer, data: PathData,
               num_alphas: int, reestimate: bool, eval_batch_size: int = 1000):
    self.alphas = jnp.linspace(0.0, 1.0, num_alphas)
    self.data = data
    prog, alphas = trainer.prog, self.alphas
    one = lambda a, b, d: path(prog, a, b, alphas, d, reestimate,
                               eval_batch_size)
    self._paths = jax.jit(loop_lib.over_replicas(
        one, trainer.replica_loop, (0, 0, None)))

  def __call__(self, a: tuple[PyTree, PyTree], b: tuple[PyTree, PyTree],
               data: PathData | None = None) -> PathMetrics:
    """Metrics [P, A] along the paths; ``data`` (same shapes) replaces the
    arrays given at construction without recompiling."""
    return jax.device_get(self._paths(a, b, self.data if data is None
                                      else data))


# --------------------------------------------------------------------------
# Children: copies of theta_k that differ only in SGD noise.


def spawn(parent: step_lib.TrainState, noise_seeds: list[int],
          mask: PyTree | None = None,
          trainer: loop_lib.Trainer | None = None) -> step_lib.TrainState:
  """``len(noise_seeds)`` children of every parent replica (parent-major).

  A child keeps the parent's weights, BatchNorm statistics, optimizer state
  and step; only its data key (data order and augmentation) is replaced by
  ``fold_in(parent data key, noise seed)``, so two children with the same
  noise seed are identical and children with different ones differ only in
  SGD noise. With ``mask`` (a ticket, stacked like the parent) the weights
  are masked and the optimizer restarts, as IMP's rewinding does.
  """
  c = len(noise_seeds)
  children = jax.tree.map(lambda x: jnp.repeat(x, c, axis=0), parent)
  seeds = jnp.tile(jnp.asarray(noise_seeds, jnp.uint32),
                   parent.step.shape[0])
  keys = jax.vmap(jax.random.fold_in)(children.data_key, seeds)
  children = children.replace(data_key=keys)
  if mask is not None:
    mask = jax.tree.map(lambda x: jnp.repeat(x, c, axis=0), mask)
    children = children.replace(
        params=jax.vmap(masks_lib.apply)(children.params, mask), mask=mask)
    children = trainer.restart(children)
  return children


def _concat(trees: list[PyTree]) -> PyTree:
  return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


def _take(tree: PyTree, idx: np.ndarray) -> PyTree:
  return jax.tree.map(lambda x: x[jnp.asarray(idx)], tree)


def _repeat(tree: PyTree, n: int) -> PyTree:
  return jax.tree.map(lambda x: jnp.repeat(x, n, axis=0), tree)


# --------------------------------------------------------------------------
# The ticket a run analyzes: dense (level 0) or IMP level L.


@dataclasses.dataclass
class Ticket:
  """Masks of level L [S] and, for L > 0, the retrained ticket and the
  pruned solution it came from (trained level L-1 weights under the level-L
  mask), as (params, batch_stats) with a replica axis."""
  level: int
  mask: PyTree
  retrained: tuple[PyTree, PyTree] | None = None
  pruned: tuple[PyTree, PyTree] | None = None
  source: str = ""


_MATCHING_SECTIONS = ("data", "model", "masks", "train", "task")


def _source_replicas(source_cfg: dict, cfg: ml_collections.ConfigDict
                     ) -> np.ndarray:
  """Indices of the source run's replicas that were trained at
  ``cfg.train.lr`` (all of an ``imp`` run; one LR's seeds of a ``sanity``
  run, whose replicas are LR-major)."""
  seeds = source_cfg["seeds"]
  if source_cfg.get("_command") != "sanity":
    return np.arange(seeds)
  lrs = list(source_cfg["sanity"]["lrs"])
  matches = [i for i, lr in enumerate(lrs) if np.isclose(lr, cfg.train.lr)]
  if not matches:
    raise config_lib.ConfigError(
        f"lmc.imp_workdir is a sanity run at LRs {lrs}; none equals "
        f"train.lr={cfg.train.lr}. Pass --config.train.lr=<one of them>.")
  return np.arange(seeds) + matches[0] * seeds


def check_source(cfg: ml_collections.ConfigDict, source_dir: str) -> dict:
  """The source workdir's config, after checking it trained the same
  network on the same data with the same recipe (LR aside for sanity runs).
  """
  path = os.path.join(source_dir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"lmc.imp_workdir={source_dir!r} holds no config.json: point it at "
        "the --workdir of an earlier `jaxticket imp` or `sanity` run.")
  source = fill_missing(read_json(path),
                        json.loads(config_json(config_lib.default_config())))
  if source.get("_command") not in ("imp", "sanity"):
    raise config_lib.ConfigError(
        f"lmc.imp_workdir={source_dir!r} holds a `{source.get('_command')}` "
        "run; an `imp` or `sanity` run is needed.")
  mine = json.loads(config_json(cfg))
  changes = []
  for section in _MATCHING_SECTIONS:
    a, b = dict(source[section]), dict(mine[section])
    if source["_command"] == "sanity" and section == "train":
      a.pop("lr"), b.pop("lr")
    changes += diff(a, b, f"{section}.")
  if changes:
    raise config_lib.ConfigError(
        f"lmc.imp_workdir={source_dir!r} was run with a different setup: "
        f"{'; '.join(changes[:6])}. Use the same config (or leave "
        "lmc.imp_workdir empty to compute the ticket).")
  return source


def load_ticket(cfg: ml_collections.ConfigDict, wd: Workdir,
                progress: bool) -> Ticket:
  """The level-``lmc.level`` ticket: read from ``lmc.imp_workdir`` or
  computed by an IMP run in ``WORKDIR/imp``."""
  level = cfg.lmc.level
  source_dir = cfg.lmc.imp_workdir
  if not source_dir:
    source_dir = wd.file("imp")
    imp_cfg = cfg.copy_and_resolve_references()
    imp_cfg.imp.levels = level
    imp.run(imp_cfg, source_dir, progress=progress)
  source = check_source(cfg, source_dir)
  if source["imp"]["levels"] < level:
    raise config_lib.ConfigError(
        f"lmc.level={level} but {source_dir} ran {source['imp']['levels']} "
        "IMP levels; choose a level it reached.")
  replicas = _source_replicas(source, cfg)
  pick = lambda tree: jax.tree.map(
      lambda x: None if x is None else jnp.asarray(x)[replicas], tree,
      is_leaf=lambda x: x is None)
  try:
    this = checkpoint.load_tree(os.path.join(source_dir, "checkpoints",
                                             f"level_{level}"))
    before = checkpoint.load_tree(os.path.join(source_dir, "checkpoints",
                                               f"level_{level - 1}"))
  except FileNotFoundError as e:
    raise FileNotFoundError(
        f"{e} The run in {source_dir} did not finish level {level}; rerun "
        "it or leave lmc.imp_workdir empty.") from None
  mask = pick(this["mask"])
  pruned_params = jax.vmap(masks_lib.apply)(pick(before["params"]), mask)
  return Ticket(level, mask,
                retrained=(pick(this["params"]), pick(this["batch_stats"])),
                pruned=(pruned_params, pick(before["batch_stats"])),
                source=os.path.abspath(source_dir))


def _source_seeds(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``cfg`` with its seeds set to those of ``lmc.imp_workdir`` (ticket and
  children must come from the same initializations)."""
  if not (cfg.lmc.level and cfg.lmc.imp_workdir):
    return cfg
  source = check_source(cfg, cfg.lmc.imp_workdir)
  cfg = cfg.copy_and_resolve_references()
  cfg.seed, cfg.seeds = source["seed"], source["seeds"]
  return cfg


# --------------------------------------------------------------------------
# The instability analysis.


def _barrier_stats(barriers: dict, rows: np.ndarray | slice) -> dict:
  """``{"test_barrier", "train_barrier", ...}`` stats over ``rows``."""
  return {f"{prefix}barrier": common.stats(barriers[name][rows])
          for name, prefix in (("test_error", "test_"),
                               ("train_error", "train_"),
                               ("test_loss", "test_loss_"),
                               ("train_loss", "train_loss_"))}


def instability(s: common.Setup, wd: Workdir, ticket: Ticket | None,
                progress: bool = True,
                connectivity: Connectivity | None = None) -> dict:
  """Barriers between children of theta_k for every k of
  ``lmc.rewind_steps`` (and, for an IMP ticket, ticket-to-solution
  connectivity). Returns the summary dict (rows per k, timings).

  Replica axis of the children: rewind step x seed x child (k-major), then,
  for a ticket, one random re-initialization of the mask per seed.
  ``connectivity`` reuses a compiled :class:`Connectivity` (benchmarks).
  """
  cfg, trainer = s.cfg, s.trainer
  ks = sorted(set(int(k) for k in cfg.lmc.rewind_steps))
  num_seeds, num_children = len(s.seeds), cfg.lmc.children
  timings = {}

  # theta_k along the dense trajectory of each seed (IMP's level 0); not
  # needed when the children's stage has started (its checkpoints hold
  # them), where init only shapes the template.
  t0 = time.time()
  init = trainer.init(loop_lib.replica_keys(s.seeds))
  ones = common.dense_masks(cfg, init.params)
  saved = {0: common.copy_tree(init)}
  if ks[-1] > 0 and not common.stage_started(wd, CHILDREN_STAGE):
    keep = lambda step, st: saved.__setitem__(step, common.copy_tree(st))
    with tqdm(total=ks[-1], disable=not progress, unit="step",
              desc="parent: dense run to the last rewind step") as bar:
      trainer.train(common.copy_tree(init), s.hparams, ks[-1], ks[-1],
                    stops=ks, on_stop=keep, progress=bar)
  else:
    saved.update({k: init.replace(step=jnp.full_like(init.step, k))
                  for k in ks})
  jax.block_until_ready(saved[ks[-1]].params)
  timings["parent_s"] = time.time() - t0

  # Children (and scratch networks) on one replica axis.
  t0 = time.time()
  noise = list(range(1, num_children + 1))
  sparse = ticket is not None and ticket.level > 0
  mask = ticket.mask if sparse else ones
  states = [spawn(saved[k], noise, mask if sparse else None, trainer)
            for k in ks]
  masks = [_repeat(mask, num_children)] * len(ks)
  children = ReplicaAxis.of(k=ks, seed=s.seeds, child=noise)  # spawn's order
  labels = [(c["k"], c["seed"], c["child"]) for c in children.labels()]
  if sparse:
    scratch = trainer.init(loop_lib.replica_keys(
        [sd + SCRATCH_SEED_OFFSET for sd in s.seeds]))
    scratch = scratch.replace(
        data_key=init.data_key,
        params=jax.vmap(masks_lib.apply)(scratch.params, mask), mask=mask)
    states.append(trainer.restart(scratch))
    masks.append(mask)
    labels += [("scratch", sd, 0) for sd in s.seeds]
  state, mask_all = _concat(states), _concat(masks)
  n = len(labels)
  hp = jax.tree.map(lambda x: jnp.concatenate(
      [jnp.tile(jnp.repeat(x, num_children), len(ks))] + ([x] if sparse else [])),
      s.hparams)
  trained, row = common.train_stage(
      s, wd, CHILDREN_STAGE, ticket.level if ticket else 0, state, mask_all,
      hp, trainer, progress=progress, seeds=[l[1] for l in labels],
      lrs=[float(x) for x in np.asarray(hp.lr)],
      desc=f"{n} children (k x seed x child)", keep_state=True)
  jax.block_until_ready(trained.params)
  timings["children_s"] = time.time() - t0

  # All paths in one program.
  t0 = time.time()
  conn = connectivity or make_connectivity(s)
  first, second, pair_of = [], [], []
  for ki, k in enumerate(ks):
    for si, sd in enumerate(s.seeds):
      kids = children.index(k=k, seed=sd)
      for i in range(num_children):
        for j in range(i + 1, num_children):
          first.append(kids[i])
          second.append(kids[j])
          pair_of.append((ki, si))
  ends = (trained.params, trained.batch_stats)
  a, b = _take(ends, np.array(first)), _take(ends, np.array(second))
  num_child_pairs = len(first)
  if sparse:
    scratch_idx = np.arange(children.size, n)  # appended after the children
    a = _concat([a, ticket.retrained, _take(ends, scratch_idx)])
    b = _concat([b, ticket.pruned, ticket.pruned])
  curves = conn(a, b)
  timings["paths_s"] = time.time() - t0

  barriers = {name: barrier(getattr(curves, name))
              for name in PathMetrics._fields}
  child_err = 1 - np.asarray(row["evaluation"].test_accuracy)
  rows = []
  pair_of = np.array(pair_of)
  for ki, k in enumerate(ks):
    per_seed = lambda v: np.array([
        v[:num_child_pairs][(pair_of[:, 0] == ki) & (pair_of[:, 1] == si)
                            ].mean() for si in range(num_seeds)])
    sel = children.index(k=k)
    in_k = pair_of[:, 0] == ki
    rows.append({
        "rewind_step": k,
        **_barrier_stats({name: per_seed(v) for name, v in barriers.items()},
                         slice(None)),
        "child_test_error": common.stats(child_err[sel]),
        "curve": {name: np.asarray(getattr(curves, name))[:num_child_pairs][
            in_k].mean(0).tolist() for name in PathMetrics._fields},
    })
  summary = {"rows": rows, "alphas": np.asarray(conn.alphas).tolist(),
             "seeds": s.seeds, "children": num_children,
             "level": ticket.level if ticket else 0,
             "density": float(np.mean(masks_lib.replica_densities(mask))),
             "bn_reestimate": bool(cfg.lmc.bn_reestimate),
             "stable_rewind_step": stable_step(rows, cfg.lmc.stable_barrier),
             "stable_barrier": cfg.lmc.stable_barrier,
             "timings_s": {k: round(v, 3) for k, v in timings.items()}}
  if sparse:
    p = num_child_pairs
    summary["connectivity"] = {
        "ticket_source": ticket.source,
        **{f"{who}_to_pruned": {
            **_barrier_stats(barriers, slice(p + o, p + o + num_seeds)),
            "curve_test_error": np.asarray(curves.test_error)[
                p + o:p + o + num_seeds].mean(0).tolist()}
           for who, o in (("ticket", 0), ("scratch", num_seeds))}}
  return summary


def make_connectivity(s: common.Setup) -> Connectivity:
  """The :class:`Connectivity` of a setup's ``lmc`` config."""
  cfg = s.cfg
  data = path_data(s.data, cfg.lmc.train_examples, cfg.lmc.bn_batches,
                   cfg.train.batch_size, cfg.seed)
  return Connectivity(s.trainer, data, cfg.lmc.alphas, cfg.lmc.bn_reestimate,
                      s.trainer.eval_batch_size)


def stable_step(rows: list[dict], threshold: float) -> int | None:
  """The earliest rewind step whose mean test error barrier is below
  ``threshold`` (Frankle et al. 2020 call a net stable at ~2% error), or
  None if none is."""
  for r in rows:
    if r["test_barrier"]["mean"] < threshold:
      return r["rewind_step"]
  return None


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> LmcSummary:
  """``jaxticket lmc``: the instability analysis of the dense net
  (``lmc.level=0``) or of the IMP ticket of level ``lmc.level``; writes
  summary.json, report.md, lmc_paths.png and instability.png."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  cfg = _source_seeds(cfg)
  wd, done = common.open_run(cfg, workdir, "lmc", LmcSummary)
  if done is not None:
    return done
  if not common.stage_started(wd, CHILDREN_STAGE):
    wd.restart_metrics()
  t0 = time.time()
  ticket = load_ticket(cfg, wd, progress) if cfg.lmc.level else None
  s = common.setup(cfg)
  summary = LmcSummary(**instability(s, wd, ticket, progress),
                       model=cfg.model.name, dataset=cfg.data.name,
                       wall_time_s=round(time.time() - t0, 2))
  report.write_lmc_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(LmcSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> LmcSummary:
  """``jaxticket lmc``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: LmcSummary) -> str:
  return (report.lmc_table(summary.rows) + "\n\nstable from rewind step: "
          f"{summary.stable_rewind_step}")


def choose_rewind_step(cfg: ml_collections.ConfigDict, workdir: str,
                       progress: bool = True) -> tuple[int, dict]:
  """IMP's automatic rewind step: the earliest k of ``lmc.rewind_steps``
  at which the *dense* net is stable (test error barrier below
  ``lmc.stable_barrier``); the largest k if none is. Runs (or reuses) the
  dense instability analysis in ``workdir``."""
  dense = cfg.copy_and_resolve_references()
  dense.lmc.level = 0
  dense.imp.rewind_step = 0
  summary = run(dense, workdir, progress)
  k = summary["stable_rewind_step"]
  chosen = k if k is not None else max(r["rewind_step"] for r in summary["rows"])
  if k is None:
    tqdm.write(f"warning: no rewind step of {list(cfg.lmc.rewind_steps)} is "
               f"stable (test barrier < {cfg.lmc.stable_barrier}); using the "
               f"largest, {chosen}. Add later steps to lmc.rewind_steps.",
               file=sys.stderr)
  info = {"chosen": chosen, "stable": k is not None,
          "threshold": cfg.lmc.stable_barrier, "workdir": os.path.abspath(
              workdir),
          "test_barrier": {r["rewind_step"]: r["test_barrier"]["mean"]
                           for r in summary["rows"]}}
  return chosen, info


__all__ = ["PathData", "PathMetrics", "interpolate", "reestimate_batch_stats",
           "path", "barrier", "path_data", "Connectivity", "spawn", "Ticket",
           "load_ticket", "instability", "stable_step", "run",
           "choose_rewind_step"]
