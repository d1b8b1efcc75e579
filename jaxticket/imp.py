"""Iterative magnitude pruning (IMP) with rewinding, on a replica axis.

Frankle & Carbin (ICLR 2019): train dense from theta_0, prune a fraction p of
the remaining weights by magnitude, reset the survivors, repeat. Variants:

- ``imp.rewind=init``: reset survivors to theta_0 (the original LTH).
- ``imp.rewind=step``: reset to theta_k, the weights (and BatchNorm
  statistics) at iteration ``imp.rewind_step`` of the dense run, then train
  from step k to the end (Frankle et al., ICML 2020, "weight rewinding").
- ``imp.rewind=lr``: keep the trained survivors and replay the LR schedule
  from step k (Renda et al., ICLR 2020, "LR rewinding").
- ``imp.rewind=finetune``: keep the trained survivors and train the same
  number of steps at a small constant LR (Renda et al.'s fine-tuning baseline;
  ``imp.finetune_lr``, default the schedule's last LR).
- ``imp.schedule=oneshot`` (OMP): every level prunes the *dense* trained
  network once, straight to density (1-p)^level, then rewinds and trains.

Every level starts with a fresh optimizer state (as OpenLTH does): momentum
from the previous level would point along pruned directions.

All replicas (seeds) go through every stage together: init, training, pruning
(each replica ranks only its own weights) and rewinding are vmapped, so a
level is one compiled program whatever the number of seeds.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import checkpoint
from jaxticket import config as config_lib
from jaxticket import data as data_lib
from jaxticket import masks as masks_lib
from jaxticket import models as models_lib
from jaxticket import pruning
from jaxticket import report
from jaxticket import train as train_lib
from jaxticket.workdir import Workdir, read_json, write_json

PyTree = Any


@dataclasses.dataclass
class Setup:
  """What every command builds from a config before training.

  Replica r trains with seed ``seeds[r]`` at learning rate ``lrs[r]``; a plain
  IMP run has one LR, a sanity check puts its LR grid on the replica axis.
  """
  cfg: ml_collections.ConfigDict
  data: data_lib.Dataset
  model: Any
  trainer: train_lib.Trainer
  seeds: list[int]
  lrs: list[float]
  hparams: train_lib.HParams
  prune_fractions: np.ndarray | None = None  # per replica; None: the config's
  rewind_steps: np.ndarray | None = None  # per replica; None: the config's


#: Config keys a grid point may set per replica within one program.
REPLICA_KEYS = ("train.lr", "train.weight_decay", "imp.prune_fraction",
                "imp.rewind_step")


def setup(cfg: ml_collections.ConfigDict,
          lrs: tuple[float, ...] | None = None,
          points: list[dict] | None = None) -> Setup:
  """Validate ``cfg``, load data, build the model and the compiled trainer.

  Replicas are the product (grid point, seed), point-major. ``points`` are
  dicts over :data:`REPLICA_KEYS` (e.g. ``{"train.lr": 0.1}``); ``lrs`` is
  short for one point per learning rate. Without either: one point, the
  config's own values.
  """
  config_lib.validate(cfg)
  data = data_lib.load(cfg.data.name, cfg.data.data_dir or None,
                       cfg.data.val_fraction, local_dir=cfg.data.dir or None)
  if cfg.train.batch_size > len(data.train_y):
    raise config_lib.ConfigError(
        f"train.batch_size={cfg.train.batch_size} exceeds the "
        f"{len(data.train_y)} training examples of {cfg.data.name}.")
  model = models_lib.build(cfg.model.name, data.num_classes, cfg.model.width,
                           cfg.model.depth or None, cfg.model.residual,
                           input_shape=data.input_shape)
  trainer = train_lib.Trainer(model, data, config_lib.recipe(cfg, data.augment),
                              replica_loop=cfg.train.replica_loop,
                              shard=cfg.train.shard_replicas)
  if points is None:
    points = [{"train.lr": float(lr)} for lr in lrs] if lrs else [{}]
  for point in points:
    unknown = set(point) - set(REPLICA_KEYS)
    if unknown:
      raise config_lib.ConfigError(
          f"{sorted(unknown)} cannot vary within one program; per-replica "
          f"keys are {list(REPLICA_KEYS)}.")
  value = lambda point, key: float(point.get(key, config_lib.get_value(cfg,
                                                                      key)))
  seeds = [cfg.seed + i for _ in points for i in range(cfg.seeds)]
  replica_lrs = [value(p, "train.lr") for p in points for _ in range(cfg.seeds)]
  wds = [value(p, "train.weight_decay") for p in points
         for _ in range(cfg.seeds)]
  hparams = train_lib.stack_hparams(replica_lrs, wds)
  fractions = np.array([value(p, "imp.prune_fraction") for p in points
                        for _ in range(cfg.seeds)], np.float32)
  for f in fractions:
    if not 0 < f < 1:
      raise config_lib.ConfigError(
          f"imp.prune_fraction={f} is out of range: must be in (0, 1).")
  rewinds = np.array([int(value(p, "imp.rewind_step")) for p in points
                      for _ in range(cfg.seeds)], np.int32)
  for k in rewinds:
    if not 0 <= k < cfg.train.steps:
      raise config_lib.ConfigError(
          f"imp.rewind_step={k} is out of range: must be in [0, "
          f"train.steps={cfg.train.steps}).")
  return Setup(cfg, data, model, trainer, seeds, replica_lrs, hparams,
               fractions, rewinds)


def dense_masks(cfg: ml_collections.ConfigDict, params: PyTree) -> PyTree:
  """The all-kept mask of stacked (replica-axis) params, per ``masks.prunable``."""
  return jax.vmap(lambda p: masks_lib.ones(p, cfg.masks.prunable))(params)


def copy_tree(tree: PyTree) -> PyTree:
  """A copy that survives donation of the original's buffers."""
  return jax.tree.map(jnp.copy, tree)


def stats(values: np.ndarray, valid: np.ndarray | None = None) -> dict:
  """``{"mean", "std", "per_seed"}`` of per-replica values; with ``valid``
  (e.g. not diverged) the mean and std use only those replicas and the
  others read ``None`` in ``per_seed``."""
  values = np.asarray(values, np.float64)
  valid = np.ones(values.shape, bool) if valid is None else np.asarray(valid)
  kept = values[valid]
  return {"mean": float(kept.mean()) if kept.size else None,
          "std": float(kept.std()) if kept.size else None,
          "per_seed": [float(v) if ok else None
                       for v, ok in zip(values, valid)]}


class LevelLogger:
  """Writes one metrics.jsonl row per replica per evaluation, drives the
  progress bar of one level and watches for divergence."""

  def __init__(self, workdir: Workdir, level: int, seeds: list[int],
               lrs: list[float], density: np.ndarray, bar: Any,
               extra: dict | None = None, stop_on_divergence: bool = False):
    self.workdir, self.level, self.seeds, self.lrs = workdir, level, seeds, lrs
    self.extra = extra or {}
    self.density, self.bar = density, bar
    self.stop_on_divergence = stop_on_divergence
    self.last: train_lib.Evaluation | None = None
    self.last_loss: np.ndarray | None = None
    self.diverged_at: np.ndarray | None = None

  def __call__(self, state: train_lib.TrainState,
               ev: train_lib.Evaluation, losses: np.ndarray) -> None:
    ev = jax.device_get(ev)
    steps = np.asarray(jax.device_get(state.step))
    diverged_at = np.asarray(jax.device_get(state.diverged_at))
    # Negative entries are steps a staggered replica waited.
    recent = losses[:, -min(50, losses.shape[1]):]
    recent = np.where(recent < 0, np.nan, recent)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)
      train_loss = np.nanmean(recent, axis=1)
    train_loss = np.where(diverged_at >= 0, np.nan, train_loss)
    self.last, self.last_loss, self.diverged_at = ev, train_loss, diverged_at
    self.workdir.log_metrics([
        {**self.extra, "level": self.level, "replica": r, "seed": s,
         "lr": self.lrs[r], "step": int(steps[r]),
         "density": float(self.density[r]),
         "train_loss": _finite_or_none(train_loss[r]),
         "val_loss": _finite_or_none(ev.val_loss[r]),
         "val_accuracy": float(ev.val_accuracy[r]),
         "test_loss": _finite_or_none(ev.test_loss[r]),
         "test_accuracy": float(ev.test_accuracy[r]),
         "diverged": bool(diverged_at[r] >= 0),
         "diverged_at": int(diverged_at[r]) if diverged_at[r] >= 0 else None}
        for r, s in enumerate(self.seeds)])
    ok = diverged_at < 0
    self.bar.set_postfix(
        loss=f"{np.mean(train_loss[ok]):.3f}" if ok.any() else "nan",
        val_acc=f"{np.mean(ev.val_accuracy[ok]):.3f}" if ok.any() else "-",
        **({"diverged": int((~ok).sum())} if not ok.all() else {}))
    if self.stop_on_divergence and not ok.all():
      r = int(np.flatnonzero(~ok)[0])
      raise DivergenceError(
          f"level {self.level}: the loss of replica {r} (seed "
          f"{self.seeds[r]}, lr {self.lrs[r]}) became NaN/Inf at step "
          f"{int(diverged_at[r])}; stopped because "
          "train.stop_on_divergence=true. Lower train.lr (or add "
          "train.warmup_steps) and run again in a new --workdir; metrics so "
          "far are in metrics.jsonl.")


class DivergenceError(RuntimeError):
  """A replica's loss became NaN/Inf and the run was asked to stop."""


def _finite_or_none(x: float) -> float | None:
  return float(x) if np.isfinite(x) else None


def train_level(s: Setup, workdir: Workdir, level: int,
                state: train_lib.TrainState, mask: PyTree,
                hparams: train_lib.HParams, trainer: train_lib.Trainer,
                stops: tuple[int, ...] = (), on_stop=None,
                progress: bool = True, seeds: list[int] | None = None,
                lrs: list[float] | None = None, desc: str | None = None,
                extra: dict | None = None
                ) -> tuple[train_lib.TrainState, dict]:
  """Train one level to ``train.steps``; returns (trained state, its row).

  The row aggregates over all replicas and keeps the per-replica final
  evaluation under ``"evaluation"`` (host arrays). ``seeds``/``lrs`` label
  the replicas (default: the Setup's), ``extra`` is added to metric rows.
  """
  seeds = s.seeds if seeds is None else seeds
  lrs = s.lrs if lrs is None else lrs
  density = masks_lib.replica_densities(mask)
  start = int(np.asarray(state.step).min())
  desc = desc or f"level {level} (density {density.mean():.3f})"
  with tqdm(total=s.cfg.train.steps - start, disable=not progress, desc=desc,
            unit="step", leave=True, dynamic_ncols=True) as bar:
    logger = LevelLogger(workdir, level, seeds, lrs, density, bar, extra,
                         s.cfg.train.stop_on_divergence)
    state = trainer.train(state, mask, hparams, s.cfg.train.steps,
                          s.cfg.train.eval_every, stops=stops,
                          on_eval=logger, on_stop=on_stop, progress=bar)
  ev, at = logger.last, logger.diverged_at
  ok = at < 0
  row = {"level": level, "density": float(density.mean()),
         "density_per_seed": [float(d) for d in density],
         "test_accuracy": stats(ev.test_accuracy, ok),
         "val_accuracy": stats(ev.val_accuracy, ok),
         "test_loss": stats(ev.test_loss, ok),
         "train_loss": stats(logger.last_loss, ok),
         "diverged_seeds": [sd for sd, good in zip(seeds, ok) if not good],
         "diverged": [{"replica": r, "seed": seeds[r], "lr": float(lrs[r]),
                       "step": int(at[r])} for r in np.flatnonzero(~ok)],
         "evaluation": ev}
  if row["diverged"]:
    tqdm.write(f"warning: level {level}: the loss became NaN/Inf for "
               + ", ".join(f"seed {d['seed']} (lr {d['lr']:g}) at step "
                           f"{d['step']}" for d in row["diverged"])
               + "; those replicas are left out of means. Lower train.lr "
               "or add warm-up.", file=sys.stderr)
  return state, row


def prune_masks(s: Setup, params: PyTree, mask: PyTree,
                fraction: float | np.ndarray,
                special_fraction: float | None) -> PyTree:
  """Vmapped pruning: each replica ranks only its own weights. ``fraction``
  is one value or one per replica (a sweep over ``imp.prune_fraction``)."""
  cfg = s.cfg
  special = None
  if special_fraction is not None:
    special = masks_lib.select(train_lib.tree_index(params, 0),
                               cfg.masks.output_layer)
  fn = lambda p, m, k, f: pruning.prune(
      p, m, f, scorer=cfg.imp.scorer, strategy=cfg.imp.strategy,
      special=special, special_fraction=special_fraction, key=k)
  keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(
      train_lib.replica_keys(s.seeds))
  fractions = jnp.broadcast_to(jnp.asarray(fraction, jnp.float32),
                               (len(s.seeds),))
  return jax.jit(jax.vmap(fn))(params, mask, keys, fractions)


def level_fractions(cfg: ml_collections.ConfigDict, level: int,
                    schedule: str | None = None,
                    p: float | np.ndarray | None = None
                    ) -> tuple[float | np.ndarray, float | None]:
  """(body fraction, output-layer fraction or None) pruned *from the mask the
  level starts with*: p per level (iterative) or straight from dense to
  (1-p)^level (one-shot). ``schedule`` overrides ``imp.schedule``; ``p``
  (one value or per replica) overrides ``imp.prune_fraction``."""
  q = cfg.imp.output_prune_fraction
  p = cfg.imp.prune_fraction if p is None else p
  special = None if q < 0 else q
  if (schedule or cfg.imp.schedule) == "iterative":
    return p, special
  to_level = lambda f: 1.0 - (1.0 - f) ** level
  return to_level(p), (None if special is None else to_level(special))


def rewind(cfg: ml_collections.ConfigDict, trained: train_lib.TrainState,
           init: train_lib.TrainState, at_k: train_lib.TrainState,
           mask: PyTree, recipe: train_lib.Recipe,
           steps: np.ndarray | None = None) -> train_lib.TrainState:
  """The state the next level trains from, masked, with a fresh optimizer.

  ``init``: theta_0; ``step``: theta_k (and its BatchNorm statistics);
  ``lr``/``finetune``: the trained weights, continuing from step k. ``steps``
  (per replica) overrides ``imp.rewind_step``; replicas rewound to different
  steps then train staggered.
  """
  mode = cfg.imp.rewind
  k = cfg.imp.rewind_step if steps is None else steps
  source = {"init": init, "step": at_k}.get(mode, trained)
  step = 0 if mode == "init" else k
  step = jnp.broadcast_to(jnp.asarray(step, source.step.dtype),
                          source.step.shape)
  state = copy_tree(source.replace(step=step, data_key=init.data_key))
  state = state.replace(params=jax.vmap(masks_lib.apply)(state.params, mask))
  return train_lib.fresh_optimizer_stacked(state, recipe)


def finetune_setup(s: Setup) -> tuple[train_lib.Trainer, train_lib.HParams]:
  """Trainer at a constant LR for ``imp.rewind=finetune`` levels."""
  cfg = s.cfg
  last = float(train_lib.lr_factor(cfg.train.steps - 1, s.trainer.recipe))
  lrs = [cfg.imp.finetune_lr or lr * last for lr in s.lrs]
  recipe = dataclasses.replace(s.trainer.recipe, schedule="constant",
                               warmup_steps=0)
  trainer = train_lib.Trainer(s.model, s.data, recipe,
                              replica_loop=s.trainer.replica_loop,
                              shard=s.trainer.shard)
  hp = s.hparams._replace(lr=jnp.asarray(lrs, jnp.float32))
  return trainer, hp


@dataclasses.dataclass
class Outcome:
  """What an IMP run leaves behind for later stages (sanity checks, LMC).

  ``masks[L]`` and ``rows[L]`` belong to level L (masks on the host, with the
  replica axis); ``init``/``at_k``/``dense`` are stacked train states.
  """
  init: train_lib.TrainState
  at_k: train_lib.TrainState
  dense: train_lib.TrainState
  masks: list[PyTree]
  rows: list[dict]


def _position(level: int, step: int, steps: int) -> int:
  """A checkpoint's place in the run: grows with (level, step)."""
  return level * (steps + 1) + step


def _trained_state(init: train_lib.TrainState, saved: dict,
                   step: int | np.ndarray) -> train_lib.TrainState:
  """A stacked state holding a saved level's weights (fresh optimizer)."""
  state = init.replace(params=jax.device_put(saved["params"]),
                       batch_stats=jax.device_put(saved["batch_stats"]),
                       step=jnp.broadcast_to(jnp.asarray(step, init.step.dtype),
                                             init.step.shape))
  if "diverged_at" in saved:
    state = state.replace(diverged_at=jnp.asarray(saved["diverged_at"]))
  return state


def _row_to_json(row: dict) -> dict:
  ev = row["evaluation"]
  return {**row, "evaluation": {k: np.asarray(v).tolist()
                                for k, v in ev._asdict().items()}}


def _row_from_json(row: dict) -> dict:
  ev = train_lib.Evaluation(**{k: np.asarray(v, np.float32)
                               for k, v in row["evaluation"].items()})
  return {**row, "evaluation": ev}


def _keep_imp_metric(level: int, step: int):
  """Predicate over metrics rows: IMP-stage rows up to (level, step)."""
  def keep(row: dict) -> bool:
    if "settings" in row or "stage" in row:
      return False
    return row["level"] < level or (row["level"] == level
                                    and row["step"] <= step)
  return keep


def run_levels(s: Setup, wd: Workdir, progress: bool = True) -> Outcome:
  """The IMP loop: dense level 0, then prune -> rewind -> retrain per level.

  Saves theta_0, theta_k and every level's masks and trained weights under
  ``checkpoints/``; writes metric rows as it goes. The whole training state
  is checkpointed every ``checkpoint.every_steps`` steps and at the end of
  each level (``checkpoints/train``); a killed run given the same workdir
  resumes from the newest readable checkpoint and ends exactly as an
  uninterrupted run would.
  """
  cfg = s.cfg
  steps = cfg.train.steps
  ks = (np.full(len(s.seeds), cfg.imp.rewind_step, np.int32)
        if s.rewind_steps is None else np.asarray(s.rewind_steps))
  k_stops = sorted(set(int(k) for k in ks) - {0})  # where level 0 keeps theta_k
  keep_k = bool(k_stops) and cfg.imp.rewind in ("step", "lr")
  every = cfg.checkpoint.every_steps
  say = lambda text: tqdm.write(text, file=sys.stderr)
  ckpts = checkpoint.TrainCheckpoints(wd.file("checkpoints", "train"),
                                      cfg.checkpoint.keep)
  init = s.trainer.init(train_lib.replica_keys(s.seeds))
  ones = dense_masks(cfg, init.params)
  template = {"level": jnp.zeros((), jnp.int32), "state": init, "mask": ones}
  resumed = ckpts.restore_latest(template, warn=lambda m: say("warning: " + m))
  outcome = Outcome(init, None, None, [], [])
  rows_path = wd.file("levels.json")

  start_level, state, mask, trained = 0, None, None, None
  if resumed is None:
    wd.restart_metrics()
    checkpoint.save_tree(wd.file("checkpoints", "init"),
                         {"params": init.params,
                          "batch_stats": init.batch_stats})
  else:
    tree = resumed[1]
    level = int(tree["level"])
    state, mask = tree["state"], tree["mask"]
    step = int(np.asarray(state.step).min())
    say(f"resuming {wd.path} from level {level}, step {step} "
        f"(checkpoint {resumed[0]}).")
    wd.truncate_metrics(_keep_imp_metric(level, step))
    saved_rows = read_json(rows_path) if os.path.exists(rows_path) else []
    done = level + 1 if step == steps else level  # levels finished
    finished = [load_level(wd.path, l) for l in range(done)]
    outcome.masks = [saved["mask"] for saved in finished]
    outcome.rows = [_row_from_json(row) for row in saved_rows[:done]]
    if done > 0:
      outcome.dense = _trained_state(init, finished[0], steps)
      trained = (state if done == level + 1 else
                 _trained_state(init, finished[-1], steps))
    if keep_k and (done > 0 or step >= k_stops[0]):
      saved_k = checkpoint.load_tree(wd.file("checkpoints", "rewind"))
      outcome.at_k = _trained_state(init, saved_k, saved_k["step"])
    start_level = done
    if done > level:  # level finished: the next one prunes from its mask
      state = None

  # theta_k per replica: init until level 0 reaches that replica's k.
  outcome.at_k = outcome.at_k or copy_tree(init)

  def on_stop(level: int, mask: PyTree):
    def stop(step: int, st: train_lib.TrainState) -> None:
      if level == 0 and step in k_stops:
        here = jnp.asarray(ks == step)
        pick = lambda a, b: jnp.where(
            here.reshape(here.shape + (1,) * (a.ndim - 1)), a, b)
        fields = ("params", "batch_stats", "step", "diverged_at")
        outcome.at_k = outcome.at_k.replace(**{
            f: jax.tree.map(pick, getattr(st, f), getattr(outcome.at_k, f))
            for f in fields})
        if keep_k:
          checkpoint.save_tree(wd.file("checkpoints", "rewind"),
                               {"params": outcome.at_k.params,
                                "batch_stats": outcome.at_k.batch_stats,
                                "step": outcome.at_k.step})
      if every and step % every == 0:
        ckpts.save(_position(level, step, steps),
                   {"level": jnp.asarray(level, jnp.int32), "state": st,
                    "mask": mask})
    return stop

  for level in range(start_level, cfg.imp.levels + 1):
    trainer, hparams = s.trainer, s.hparams
    if level > 0 and cfg.imp.rewind == "finetune":
      trainer, hparams = finetune_setup(s)
    if state is None:  # a fresh level (not resumed mid-way)
      if level == 0:
        state, mask = copy_tree(init), ones
      else:
        fraction, special_fraction = level_fractions(
            cfg, level, p=s.prune_fractions)
        if cfg.imp.schedule == "oneshot":
          source, mask = outcome.dense, ones
        else:
          source = trained
        mask = prune_masks(s, source.params, mask, fraction, special_fraction)
        state = rewind(cfg, source, init, outcome.at_k, mask, trainer.recipe,
                       steps=ks)
    begin = int(np.asarray(state.step).min())
    stops = set(range(begin - begin % every + every, steps, every)) \
        if every else set()
    if level == 0:
      stops.update(k for k in k_stops if k > begin)
    trained, row = train_level(s, wd, level, state, mask, hparams, trainer,
                               stops=tuple(sorted(stops)),
                               on_stop=on_stop(level, mask), progress=progress)
    save_level(wd, level, mask, trained)
    outcome.masks.append(jax.device_get(mask))
    outcome.rows.append(row)
    write_json(rows_path, [_row_to_json(r) for r in outcome.rows])
    ckpts.save(_position(level, steps, steps),
               {"level": jnp.asarray(level, jnp.int32), "state": trained,
                "mask": mask})
    if level == 0:
      outcome.dense = trained
    state = None
  ckpts.close()
  return outcome


def run(cfg: ml_collections.ConfigDict, workdir: str, *, command: str = "imp",
        progress: bool = True) -> dict:
  """Run IMP as configured; write the run directory; return the summary.

  ``command='train'`` with ``imp.levels=0`` is plain dense training.
  """
  config_lib.validate(cfg)  # before touching the workdir
  wd = Workdir(workdir, command)
  done = wd.finished_summary()
  wd.claim(cfg)
  if done is not None:
    tqdm.write(f"{wd.path} holds a finished `{command}` run with this config; "
               "nothing recomputed (use a new --workdir to run again).",
               file=sys.stderr)
    return done
  t0 = time.time()
  cfg, auto = resolve_rewind_step(cfg, wd, progress)
  s = setup(cfg)
  outcome = run_levels(s, wd, progress)
  rows = [{k: v for k, v in r.items() if k != "evaluation"}
          for r in outcome.rows]
  summary = {"levels": rows, "seeds": s.seeds,
             "rewind": cfg.imp.rewind, "rewind_step": cfg.imp.rewind_step,
             "schedule": cfg.imp.schedule, "strategy": cfg.imp.strategy,
             "model": cfg.model.name, "dataset": cfg.data.name,
             "wall_time_s": round(time.time() - t0, 2)}
  if auto:
    summary["auto_rewind"] = auto
  report.write_imp_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished_summary()


def resolve_rewind_step(cfg: ml_collections.ConfigDict, wd: Workdir,
                        progress: bool = True
                        ) -> tuple[ml_collections.ConfigDict, dict | None]:
  """``cfg`` with ``imp.rewind_step=-1`` (automatic) replaced by the
  earliest step of ``lmc.rewind_steps`` at which the dense network is stable
  (Frankle et al. 2020), found by an instability analysis in
  ``WORKDIR/auto_rewind``; returns (cfg, what was chosen and why) or
  (cfg, None) for a fixed step."""
  if cfg.imp.rewind_step != config_lib.AUTO_REWIND:
    return cfg, None
  from jaxticket import lmc  # lmc builds on this module; import on demand
  k, info = lmc.choose_rewind_step(cfg, wd.file("auto_rewind"), progress)
  tqdm.write(f"automatic rewind step: {k} (dense test-error barriers by "
             f"step: {info['test_barrier']})", file=sys.stderr)
  cfg = cfg.copy_and_resolve_references()
  cfg.imp.rewind_step = k
  return cfg, info


def save_level(wd: Workdir, level: int, mask: PyTree,
               state: train_lib.TrainState) -> None:
  """Save a level's masks and trained params/statistics (replica axis kept)."""
  checkpoint.save_tree(wd.file("checkpoints", f"level_{level}"),
                       {"mask": mask, "params": state.params,
                        "batch_stats": state.batch_stats,
                        "diverged_at": state.diverged_at})


def load_level(workdir: str, level: int) -> dict:
  """The masks, params and BatchNorm statistics saved for ``level``."""
  return checkpoint.load_tree(
      Workdir(workdir, "imp").file("checkpoints", f"level_{level}"))
