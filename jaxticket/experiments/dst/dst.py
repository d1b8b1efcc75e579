"""Dynamic sparse training vs lottery tickets, one program (``jaxticket dst``).

Are tickets special, or do other sparse-training routes get there too? At
each IMP level of ``dst.levels`` (the ticket's exact kept count is every
method's target), with the same data, recipe, steps and seeds:

- ``static_erk`` / ``static_uniform``: a random mask with ERK (Evci et al.
  2020) or uniform layer densities, trained as is;
- ``set`` (Mocanu et al. 2018) and ``rigl`` (Evci et al. 2020) from the
  same ERK mask as ``static_erk``: drop and regrow every ``dst.update_every``
  steps, RigL by the dense gradient, SET at random;
- ``gmp`` (Zhu & Gupta 2017): dense to the target along the cubic
  schedule, per layer; ``granet`` / ``granet_s2s`` (Liu et al. 2021):
  global gradual pruning with neuroregeneration, from dense or from an ERK
  mask at ``dst.granet_initial_density``;
- ``scratch`` / ``scratch_sai``: the ticket's mask on a fresh
  initialization, standard or sparsity-aware (Evci et al. 2022);
- ``ticket``: the IMP ticket (mask on theta_0, or theta_k with
  ``imp.rewind=step``), from an IMP run in ``WORKDIR/imp`` or
  ``dst.imp_workdir``;
- ``finetune``: prune-and-fine-tune (Liu et al. 2021): IMP with
  ``imp.rewind=finetune`` (``WORKDIR/imp_finetune``); its level L fine-tunes
  the pruned level L-1 weights at the fine-tuning LR. Ticket and fine-tuning
  cost the same number of training steps in total (dense + L levels).

All (level, method, seed) replicas train as ONE compiled program: the mask
updater is chosen per replica (``sparse_training.Choice``, the choice and
the per-replica targets are data in ``sparse_state``). The static methods
compile no update of their own: the Choice's static branch returns the mask.

Gradient flow (Evci et al. 2022): at every evaluation point, one compiled
program measures each replica's masked gradient norm on a fixed batch of
``dst.grad_examples`` training examples and its L2 distance from its start;
the updaters log the masked gradient norm before and after each of their
mask updates inside the scan (``sparse_training.Monitored``). At the end the
error barrier between every solution and the ticket's *pruned solution*
(IMP level L-1 trained, under the level-L mask) is measured with the LMC
machinery (``lmc.Connectivity``, through the experiment registry).

The run resumes from training checkpoints (``checkpoint.every_steps``);
the IMP runs resume on their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket import sparse_training
from jaxticket.core import checkpoint
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.checks import ConfigError
from jaxticket.core.replicas import ReplicaAxis, concat
from jaxticket.core.stats import mean_ci, stats, welch
from jaxticket.core.workdir import Workdir
from jaxticket.experiments import common, registry
from jaxticket.experiments.dst import report, settings
from jaxticket.experiments.summaries import DstSummary
from jaxticket.pruning import controls, ratios
from jaxticket.sparse_training import sparse_init

PyTree = Any

#: Seed offsets of the fresh initializations (scratch) and random masks.
SCRATCH_SEED_OFFSET = 20_000
MASK_SEED_OFFSET = 30_000

#: The mask updater each method trains with.
UPDATER_OF = {"static_erk": "static", "static_uniform": "static",
              "set": "set", "rigl": "rigl", "gmp": "gmp", "granet": "granet",
              "granet_s2s": "granet", "scratch": "static",
              "scratch_sai": "static", "ticket": "static",
              "finetune": "static"}
DYNAMIC = tuple(m for m, u in UPDATER_OF.items() if u != "static")


# --------------------------------------------------------------------------
# The updaters and the tickets.


def schedule(cfg: ml_collections.ConfigDict) -> dict:
  """The updaters' schedules in optimizer steps."""
  d, steps = cfg.dst, cfg.train.steps
  return {"update_every": int(d.update_every),
          "rigl_end": int(round(d.end_fraction * steps)),
          "prune_start": int(round(d.prune_start_fraction * steps)),
          "prune_end": int(round(d.prune_end_fraction * steps)),
          "total": int(steps)}


def updaters(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
  """``{updater name: Monitored updater}`` for the methods of the run, in
  the order of the Choice (the index is ``state["which"]``)."""
  d, t = cfg.dst, schedule(cfg)
  every = t["update_every"]
  build = {
      "static": lambda: sparse_training.Static(),
      "set": lambda: sparse_training.SET(
          end_step=t["rigl_end"], drop_fraction=d.drop_fraction,
          update_every=every),
      "rigl": lambda: sparse_training.RigL(
          end_step=t["rigl_end"], drop_fraction=d.drop_fraction,
          update_every=every),
      "gmp": lambda: sparse_training.GMP(
          start_step=t["prune_start"], end_step=t["prune_end"],
          update_every=every),
      "granet": lambda: sparse_training.GraNet(
          start_step=t["prune_start"], end_step=t["prune_end"],
          total_steps=t["total"], update_every=every,
          death_rate=d.death_rate, death_rate_min=d.death_rate_min)}
  names = list(dict.fromkeys(UPDATER_OF[m] for m in d.methods))
  capacity = cfg.train.steps // every + 2
  return {n: sparse_training.Monitored(build[n](), capacity) for n in names}


_IMP_KEYS = ("prune_fraction", "output_prune_fraction", "strategy",
             "schedule", "scorer", "rewind_step")
_FINETUNE_KEYS = ("finetune_lr", "finetune_lr_fraction", "finetune_schedule")


def imp_config(cfg: ml_collections.ConfigDict, kind: str
               ) -> ml_collections.ConfigDict:
  """The config of the IMP run behind ``kind`` (``ticket``/``finetune``)."""
  sub = cfg.copy_and_resolve_references()
  sub.imp.levels = max(int(l) for l in cfg.dst.levels)
  if kind == "finetune":
    sub.imp.rewind = "finetune"
  return sub


def check_imp_source(cfg: ml_collections.ConfigDict, path: str, kind: str
                     ) -> None:
  """An earlier IMP workdir must match this run: same data, model, masks
  and recipe (``lmc.check_source``), seeds, IMP keys, enough levels."""
  key = "dst.imp_workdir" if kind == "ticket" else "dst.finetune_workdir"
  source = registry.load("lmc").check_source(cfg, path)
  if source.get("_command") != "imp":
    raise ConfigError(f"{key}={path!r} holds a `{source.get('_command')}` "
                      "run; dst needs an `imp` run.")
  want = imp_config(cfg, kind)
  if (source["seed"], source["seeds"]) != (cfg.seed, cfg.seeds):
    first, n = source["seed"], source["seeds"]
    raise ConfigError(
        f"{key}={path!r} ran seeds {first}..{first + n - 1}, this config "
        f"seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1}: give "
        f"--config.seed={first} --config.seeds={n}.")
  keys = _IMP_KEYS + (("rewind",) if kind == "ticket" else ("rewind",)
                      + _FINETUNE_KEYS)
  for k in keys:
    if source["imp"][k] != want.imp[k]:
      raise ConfigError(
          f"{key}={path!r} ran imp.{k}={source['imp'][k]!r}, this run needs "
          f"{want.imp[k]!r}; use a matching run or leave {key} empty.")
  if source["imp"]["levels"] < want.imp.levels:
    raise ConfigError(
        f"{key}={path!r} ran {source['imp']['levels']} IMP levels; "
        f"dst.levels needs {want.imp.levels}.")


def imp_source(cfg: ml_collections.ConfigDict, wd: Workdir, kind: str,
               progress: bool) -> str:
  """The IMP workdir of ``kind``: given, or run now in ``WORKDIR/imp`` /
  ``WORKDIR/imp_finetune`` (resumable)."""
  given = cfg.dst.imp_workdir if kind == "ticket" else \
      cfg.dst.finetune_workdir
  if given:
    check_imp_source(cfg, given, kind)
    return os.path.abspath(given)
  path = wd.file("imp" if kind == "ticket" else "imp_finetune")
  registry.load("imp").run(imp_config(cfg, kind), path, progress=progress)
  return path


def load_level(path: str, level: int, key: str) -> dict:
  try:
    return registry.load("imp").load_level(path, level)
  except FileNotFoundError:
    raise FileNotFoundError(
        f"{path} holds no finished IMP level {level} ({key}); rerun it or "
        f"leave {key} empty.") from None


# --------------------------------------------------------------------------
# Start states: one stacked TrainState per (level, method), seeds inside.


def kept(mask: PyTree) -> np.ndarray:
  """Kept prunable weights per replica of a stacked mask."""
  return np.asarray(jax.vmap(lambda m: masks_lib.count(m)[0])(mask))


def random_masks(ones: PyTree, seeds: list[int], level: int, tag: int,
                 counts: np.ndarray, rule: str) -> PyTree:
  """Per seed, a random mask keeping ``counts[s]`` prunable weights in
  total, spread over the layers by ``rule`` (``pruning.ratios``) with
  exact integer counts."""
  one = jax.tree.map(lambda m: None if m is None else m[0], ones,
                     is_leaf=lambda x: x is None)
  shapes = ratios.leaf_shapes(one)
  sizes = [int(np.prod(s)) for s in shapes]
  total = sum(sizes)
  per_layer = np.array([ratios.kept_counts(sizes, ratios.get(rule)(
      shapes, int(c) / total), int(c) / total) for c in counts], np.int32)
  keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(
      jax.random.key(sd + MASK_SEED_OFFSET), level), tag) for sd in seeds])
  n = len(shapes)
  return loop_lib.vmapped(lambda k, m, c: controls.random_with_counts(
      k, m, [c[i] for i in range(n)]))(keys, ones, jnp.asarray(per_layer))


def layer_targets(ones: PyTree, counts: np.ndarray, rule: str) -> np.ndarray:
  """Per replica, per-layer kept counts summing to ``counts[r]``."""
  one = jax.tree.map(lambda m: None if m is None else m[0], ones,
                     is_leaf=lambda x: x is None)
  shapes = ratios.leaf_shapes(one)
  sizes = [int(np.prod(s)) for s in shapes]
  total = sum(sizes)
  return np.array([ratios.kept_counts(sizes, ratios.get(rule)(
      shapes, int(c) / total), int(c) / total) for c in counts], np.int32)


@dataclasses.dataclass
class Start:
  """Stacked start states per (level, method) and what the axis needs."""
  states: dict[tuple[int, str], step_lib.TrainState]
  lrs: dict[tuple[int, str], list[float]]
  targets: dict[int, np.ndarray]  # level -> ticket's kept count per seed
  budget: dict[tuple[int, str], int]  # total training steps incl. the mask
  pruned: dict[int, tuple[PyTree, PyTree]]  # the ticket's pruned solution


def build_starts(cfg: ml_collections.ConfigDict, s: common.Setup,
                 ticket_dir: str, finetune_dir: str | None) -> Start:
  """Every method's start at every level, from the IMP runs and seeds."""
  d, steps = cfg.dst, cfg.train.steps
  seeds = s.seeds
  init = s.trainer.init(loop_lib.replica_keys(seeds))
  ones = common.dense_masks(cfg, init.params)
  total = masks_lib.count(jax.tree.map(
      lambda m: None if m is None else m[0], ones,
      is_leaf=lambda x: x is None))[1]
  fresh = s.trainer.init(loop_lib.replica_keys(
      [sd + SCRATCH_SEED_OFFSET for sd in seeds]))
  sai = loop_lib.vmapped(sparse_init.sparsity_aware)
  plain = loop_lib.vmapped(masks_lib.apply)
  k = int(cfg.imp.rewind_step)
  theta, theta_stats, theta_step = init.params, init.batch_stats, 0
  if cfg.imp.rewind == "step" and k > 0:
    saved = checkpoint.load_tree(os.path.join(ticket_dir, "checkpoints",
                                              "rewind"))
    theta = jax.device_put(saved["params"])
    theta_stats = jax.device_put(saved["batch_stats"])
    theta_step = k

  def state(params, batch_stats, mask, step=0):
    return init.replace(
        params=params, batch_stats=batch_stats, mask=jax.device_put(mask),
        step=jnp.full_like(init.step, step))

  scratch_init = lambda p, m: (sai if d.sparse_init == "sparsity_aware"
                               else plain)(p, m)
  out = Start({}, {}, {}, {}, {})
  need = set(d.methods)
  for level in sorted(set(int(l) for l in d.levels)):
    saved = load_level(ticket_dir, level, "dst.imp_workdir")
    before = load_level(ticket_dir, level - 1, "dst.imp_workdir")
    ticket = jax.device_put(saved["mask"])
    counts = kept(ticket)
    out.targets[level] = counts
    out.pruned[level] = (plain(jax.device_put(before["params"]), ticket),
                         jax.device_put(before["batch_stats"]))
    states = {}
    if need & {"static_erk", "set", "rigl"}:
      erk = random_masks(ones, seeds, level, 1, counts, d.distribution)
      for m in ("static_erk", "set", "rigl"):
        states[m] = state(scratch_init(init.params, erk), init.batch_stats,
                          erk)
    if "static_uniform" in need:
      uni = random_masks(ones, seeds, level, 2, counts, "uniform")
      states["static_uniform"] = state(scratch_init(init.params, uni),
                                       init.batch_stats, uni)
    for m in ("gmp", "granet"):
      states[m] = state(init.params, init.batch_stats, ones)
    if "granet_s2s" in need:
      start_count = int(round(d.granet_initial_density * total))
      if start_count <= counts.max():
        raise ConfigError(
            f"dst.granet_initial_density={d.granet_initial_density} is not "
            f"above the density of IMP level {level} "
            f"({counts.max() / total:.3f}): granet_s2s must start denser "
            "than its target; raise it or drop that level.")
      s2s = random_masks(ones, seeds, level, 3,
                         np.full(len(seeds), start_count), d.distribution)
      states["granet_s2s"] = state(scratch_init(init.params, s2s),
                                   init.batch_stats, s2s)
    states["scratch"] = state(plain(fresh.params, ticket), fresh.batch_stats,
                              ticket)
    states["scratch_sai"] = state(sai(fresh.params, ticket),
                                  fresh.batch_stats, ticket)
    states["ticket"] = state(plain(theta, ticket), theta_stats, ticket,
                             theta_step)
    if "finetune" in need:
      ft = load_level(finetune_dir, level, "dst.finetune_workdir")
      ft_before = load_level(finetune_dir, level - 1, "dst.finetune_workdir")
      ft_mask = jax.device_put(ft["mask"])
      states["finetune"] = state(plain(jax.device_put(ft_before["params"]),
                                       ft_mask),
                                 jax.device_put(ft_before["batch_stats"]),
                                 ft_mask, k)
    retrain = steps - k  # one IMP level of retraining or fine-tuning
    for m in d.methods:
      out.states[(level, m)] = states[m]
      out.lrs[(level, m)] = (registry.load("imp").finetune_lrs(cfg, s.lrs)
                             if m == "finetune" else list(s.lrs))
      out.budget[(level, m)] = (
          steps + level * retrain if m in ("ticket", "finetune") else
          steps + (level - 1) * retrain + steps if m.startswith("scratch")
          else steps)
  return out


# --------------------------------------------------------------------------
# The run.


def _flow_rows(axis: ReplicaAxis, flow: loop_lib.GradientFlow,
               density: np.ndarray) -> list[dict]:
  flow = jax.device_get(flow)
  return [{"stage": "dst", "level": lab["level"], "method": lab["method"],
           "density": float(density[r]),
           "grad_norm": float(flow.grad_norm[r]),
           "distance": float(flow.distance[r])}
          for r, lab in enumerate(axis.labels())]


def _position(step: int) -> int:
  return int(step)


def train(cfg: ml_collections.ConfigDict, s: common.Setup, wd: Workdir,
          trainer: loop_lib.Trainer, start: step_lib.TrainState,
          hp: optim.HParams, axis: ReplicaAxis, anchor: PyTree,
          grad_batch: tuple[jax.Array, jax.Array], progress: bool
          ) -> tuple[step_lib.TrainState, loop_lib.Evaluation]:
  """Train the dst program to ``train.steps`` with checkpoints; resume
  from the newest readable one."""
  steps = cfg.train.steps
  say = lambda text: tqdm.write(text, file=sys.stderr)
  ckpts = checkpoint.TrainCheckpoints(wd.file("checkpoints", "train"),
                                      cfg.checkpoint.keep)
  template = {"state": start.replace(mask=None), "mask": start.mask}
  resumed = ckpts.restore_latest(template, warn=lambda m: say("warning: " + m))
  if resumed is None:
    wd.restart_metrics()
    state = start
  else:
    tree = resumed[1]
    state = tree["state"].replace(mask=tree["mask"])
    at = int(np.asarray(state.step).min())
    say(f"resuming {wd.path} at step {at} (checkpoint {resumed[0]}).")
    wd.truncate_metrics(lambda row: row.get("stage") == "dst"
                        and row["step"] <= at)
  if int(np.asarray(state.step).min()) >= steps:
    ckpts.close()
    return state, trainer.evaluate(state)
  every = cfg.checkpoint.every_steps
  begin = int(np.asarray(state.step).min())
  stops = tuple(range(begin - begin % every + every, steps, every)) \
      if every else ()

  def on_stop(step: int, st: step_lib.TrainState) -> None:
    ckpts.save(_position(step), {"state": st.replace(mask=None),
                                 "mask": st.mask})

  def row_extra(st, ev):
    del ev
    return _flow_rows(axis, trainer.gradient_flow(st, anchor, *grad_batch),
                      masks_lib.replica_densities(st.mask))

  # ``train_level`` evaluates every ``train.eval_every``: the dst program
  # evaluates at its own interval.
  run_cfg = cfg.copy_and_resolve_references()
  run_cfg.train.eval_every = settings.eval_every(cfg)
  s_run = dataclasses.replace(s, cfg=run_cfg)
  trained, row = common.train_level(
      s_run, wd, 0, state, state.mask, hp, trainer, stops=stops,
      on_stop=on_stop, progress=progress, seeds=axis.values("seed"),
      lrs=[float(x) for x in np.asarray(hp.lr)],
      desc=f"dst: {axis.size} replicas (level x method x seed)",
      extra={"stage": "dst"}, row_extra=row_extra)
  ckpts.save(_position(steps), {"state": trained.replace(mask=None),
                                "mask": trained.mask})
  ckpts.close()
  return trained, row["evaluation"]


def grad_batch(cfg: ml_collections.ConfigDict, data) -> tuple:
  """The fixed training examples the gradient norm is measured on."""
  rng = np.random.default_rng(cfg.seed + 7)
  n = len(data.train_y)
  idx = np.sort(rng.permutation(n)[:min(n, cfg.dst.grad_examples)])
  return jnp.asarray(data.train_x[idx]), jnp.asarray(data.train_y[idx])


def update_logs(final: step_lib.TrainState, names: list[str]) -> list[dict]:
  """Per replica, its own updater's log (the Monitored state)."""
  which = np.asarray(final.sparse_state["which"])
  per = sparse_training.chosen(final.sparse_state["states"], which)
  return [{"updater": names[int(w)], **{k: v for k, v in p.items()
                                        if k.startswith("log_")
                                        or k == "updates"}}
          for w, p in zip(which, per)]


def barriers(cfg: ml_collections.ConfigDict, s: common.Setup,
             axis: ReplicaAxis, final: step_lib.TrainState, start: Start
             ) -> dict[str, np.ndarray]:
  """Error and loss barriers [R] between every replica's solution and the
  ticket's pruned solution of its level and seed."""
  lmc = registry.load("lmc")
  seed_pos = {sd: i for i, sd in enumerate(s.seeds)}
  labels = axis.labels()
  pick = lambda lab, which: jax.tree.map(
      lambda x: x[seed_pos[lab["seed"]]], start.pruned[lab["level"]][which])
  b_params = jax.tree.map(lambda *xs: jnp.stack(xs),
                          *[pick(lab, 0) for lab in labels])
  b_stats = jax.tree.map(lambda *xs: jnp.stack(xs),
                         *[pick(lab, 1) for lab in labels])
  data = lmc.path_data(s.data, cfg.lmc.train_examples, cfg.lmc.bn_batches,
                       cfg.train.batch_size, cfg.seed)
  conn = lmc.Connectivity(s.trainer, data, cfg.dst.alphas,
                          cfg.lmc.bn_reestimate, s.trainer.eval_batch_size)
  curves = conn((final.params, final.batch_stats), (b_params, b_stats))
  return {name: lmc.barrier(getattr(curves, name))
          for name in ("test_error", "train_error", "test_loss")} | {
              "curve": np.asarray(curves.test_error)}


def _ci_stats(values: np.ndarray, ok: np.ndarray) -> dict:
  out = stats(values, ok)
  out["ci_low"], out["ci_high"] = mean_ci(np.asarray(values)[ok])
  return out


def summarize(cfg, s, axis, start, ev0, flow0, ev, flow1, final, logs, bars,
              names, wd, t0, ticket_dir, finetune_dir) -> DstSummary:
  levels = list(axis.levels("level"))
  methods = list(axis.levels("method"))
  dens = masks_lib.replica_densities(final.mask)
  diverged = np.asarray(jax.device_get(final.diverged_at)) >= 0
  ok = ~diverged
  acc = np.asarray(ev.test_accuracy)
  aurc = np.asarray(ev.test_aurc_softmax, np.float64)
  own_aurc = np.asarray(ev.test_aurc, np.float64)
  total = masks_lib.count(jax.tree.map(
      lambda m: None if m is None else m[0], final.mask,
      is_leaf=lambda x: x is None))[1]
  rows, updates, comparisons = [], [], []
  for level in levels:
    for m in methods:
      idx = axis.index(level=level, method=m)
      good = ok[idx]
      rows.append({
          "level": level, "method": m,
          "target_density": float(np.mean(start.targets[level]) / total),
          "density": float(np.mean(dens[idx])),
          "density_per_seed": [float(x) for x in dens[idx]],
          "test_accuracy": _ci_stats(acc[idx], good),
          "val_accuracy": _ci_stats(np.asarray(ev.val_accuracy)[idx], good),
          "test_loss": stats(np.asarray(ev.test_loss)[idx], good),
          # area under the softmax coverage-risk curve (core/selective.py),
          # as pai's rows carry it; diverged / non-finite seeds are None
          "test_aurc_softmax": stats(aurc[idx], good & np.isfinite(
              aurc[idx])),
          "test_aurc": stats(own_aurc[idx], good & np.isfinite(
              own_aurc[idx])),
          "start_test_accuracy": stats(np.asarray(ev0.test_accuracy)[idx]),
          "grad_norm_init": stats(np.asarray(flow0.grad_norm)[idx]),
          "grad_norm_final": stats(np.asarray(flow1.grad_norm)[idx], good),
          "distance": stats(np.asarray(flow1.distance)[idx], good),
          "barrier_test": stats(bars["test_error"][idx], good),
          "barrier_train": stats(bars["train_error"][idx], good),
          "barrier_test_loss": stats(bars["test_loss"][idx], good),
          "budget_steps": int(start.budget[(level, m)]),
          "lr": float(np.mean(start.lrs[(level, m)])),
          "diverged_seeds": [int(sd) for sd, d in
                             zip(np.asarray(axis.values("seed"))[idx],
                                 diverged[idx]) if d]})
      if m in DYNAMIC:
        per = [logs[i] for i in idx]
        n = min(int(p["updates"]) for p in per)
        n = min(n, len(per[0]["log_step"]))
        before = np.array([p["log_before"][:n] for p in per])
        after = np.array([p["log_after"][:n] for p in per])
        updates.append({
            "level": level, "method": m,
            "steps": [int(x) for x in per[0]["log_step"][:n]],
            "before": before.mean(0).tolist(), "after": after.mean(0).tolist(),
            "change": (after - before).mean(0).tolist(),
            "updates": int(per[0]["updates"])})
    if "ticket" in methods:
      base = acc[axis.index(level=level, method="ticket")]
      for m in methods:
        if m == "ticket":
          continue
        other = acc[axis.index(level=level, method=m)]
        comparisons.append({"level": level, "method": m, "vs": "ticket",
                            **welch(other, base)})
  curves = curve_rows(wd, axis, ev0, flow0, start)
  densities = {str(l): float(np.mean(start.targets[l]) / total)
               for l in levels}
  return DstSummary(
      rows=rows, curves=curves, updates=updates, comparisons=comparisons,
      methods=methods, levels=levels, densities=densities, seeds=s.seeds,
      steps=cfg.train.steps,
      settings={**{k: cfg.dst[k] for k in (
          "distribution", "sparse_init", "update_every", "drop_fraction",
          "end_fraction", "prune_start_fraction", "prune_end_fraction",
          "gmp_ratio", "death_rate", "death_rate_min",
          "granet_initial_density", "grad_examples", "alphas")},
                "schedule": schedule(cfg), "rewind": cfg.imp.rewind,
                "rewind_step": int(cfg.imp.rewind_step),
                "lr": float(cfg.train.lr),
                "finetune_lr": float(registry.load("imp").finetune_lrs(
                    cfg, [cfg.train.lr])[0]),
                "finetune_schedule": cfg.imp.finetune_schedule,
                "bn_reestimate": bool(cfg.lmc.bn_reestimate),
                "updaters": names},
      model=cfg.model.name, dataset=cfg.data.name,
      wall_time_s=round(time.time() - t0, 2), imp_workdir=ticket_dir,
      finetune_workdir=finetune_dir or "")


def curve_rows(wd: Workdir, axis: ReplicaAxis, ev0, flow0, start) -> list:
  """Per (level, method): mean test accuracy, gradient norm, distance and
  density at each evaluation step (step 0 = the start), from metrics.jsonl."""
  rows = []
  with open(wd.file("metrics.jsonl")) as f:
    for line in f:
      try:
        r = json.loads(line)
      except json.JSONDecodeError:
        continue
      if r.get("stage") == "dst":
        rows.append(r)
  out = []
  acc0, g0 = np.asarray(ev0.test_accuracy), np.asarray(flow0.grad_norm)
  for level in axis.levels("level"):
    for m in axis.levels("method"):
      idx = axis.index(level=level, method=m)
      mine = [r for r in rows if r["level"] == level and r["method"] == m]
      steps = sorted({r["step"] for r in mine})
      mean = lambda key, st: float(np.mean([
          r[key] for r in mine if r["step"] == st and r[key] is not None]))
      out.append({
          "level": level, "method": m, "steps": [0] + steps,
          "test_accuracy": [float(acc0[idx].mean())] + [
              mean("test_accuracy", st) for st in steps],
          "grad_norm": [float(g0[idx].mean())] + [
              mean("grad_norm", st) for st in steps],
          "distance": [0.0] + [mean("distance", st) for st in steps],
          "density": [None] + [mean("density", st) for st in steps]})
  return out


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> DstSummary:
  """``jaxticket dst``; writes the run directory, returns the summary."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  wd, done = common.open_run(cfg, workdir, "dst", DstSummary)
  if done is not None:
    return done
  t0 = time.time()
  ticket_dir = imp_source(cfg, wd, "ticket", progress)
  finetune_dir = (imp_source(cfg, wd, "finetune", progress)
                  if "finetune" in cfg.dst.methods else None)
  s = common.setup(cfg)
  ups = updaters(cfg)
  names = list(ups)
  prog = s.trainer.prog._replace(
      updater=sparse_training.Choice(tuple(ups.values())))
  trainer = loop_lib.Trainer(prog, s.data, replica_loop=cfg.train.replica_loop,
                             shard=cfg.train.shard_replicas)
  start = build_starts(cfg, s, ticket_dir, finetune_dir)
  levels = sorted(set(int(l) for l in cfg.dst.levels))
  axis = ReplicaAxis.of(level=levels, method=list(cfg.dst.methods),
                        seed=s.seeds)
  keys = [(l, m) for l in levels for m in cfg.dst.methods]
  state = trainer.restart(concat([start.states[k] for k in keys]))
  which = [names.index(UPDATER_OF[lab["method"]]) for lab in axis.labels()]
  targets = np.concatenate([start.targets[l] for l, _ in keys])
  one = jax.tree.map(lambda m: None if m is None else m[:1], state.mask,
                     is_leaf=lambda x: x is None)
  per_layer = np.concatenate([layer_targets(
      jax.tree.map(lambda m: None if m is None else jnp.ones_like(m),
                   one, is_leaf=lambda x: x is None),
      start.targets[l], cfg.dst.gmp_ratio) for l, _ in keys])
  dynamic = not prog.updater.static  # all-static methods: no update at all
  if dynamic:
    state = state.replace(sparse_state=sparse_training.assign(
        state.sparse_state, which=np.asarray(which, np.int32),
        final_count=targets.astype(np.int32),
        final_counts=per_layer.astype(np.int32)))
  lrs = [lr for k in keys for lr in start.lrs[k]]
  hp = optim.stack_hparams(lrs, [cfg.train.weight_decay] * len(lrs))
  batch = grad_batch(cfg, s.data)
  anchor = common.copy_tree(state.params)
  ev0 = jax.device_get(trainer.evaluate(state))
  flow0 = jax.device_get(trainer.gradient_flow(state, anchor, *batch))
  final, ev = train(cfg, s, wd, trainer, common.copy_tree(state), hp, axis,
                    anchor, batch, progress)
  ev = jax.device_get(ev)
  flow1 = jax.device_get(trainer.gradient_flow(final, anchor, *batch))
  logs = update_logs(final, names) if dynamic else []
  bars = barriers(cfg, s, axis, final, start)
  summary = summarize(cfg, s, axis, start, ev0, flow0, ev, flow1, final, logs,
                      bars, names, wd, t0, ticket_dir, finetune_dir)
  report.write_dst_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(DstSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> DstSummary:
  """``jaxticket dst``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: DstSummary) -> str:
  return report.dst_table(summary)


__all__ = ["run", "command", "console", "updaters", "build_starts",
           "UPDATER_OF", "schedule"]
