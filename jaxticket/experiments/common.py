"""What every experiment shares: setup from a config, training one stage
of replicas with logging, divergence handling.

``setup`` validates a config, loads the data, builds the model, the task and
the compiled :class:`~jaxticket.core.loop.Trainer`, and lays out the
replica axis (grid point x seed). ``train_level`` trains one stage (an IMP
level, a group of controls, LMC children) and writes its metric rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket.core import checkpoint
from jaxticket.core import runtime
from jaxticket import data as data_lib
from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core import selective
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.stats import stats
from jaxticket.core.workdir import (Workdir, config_json, diff, fill_missing,
                                     read_json)
from jaxticket.experiments.stages import Stages

PyTree = Any


@dataclasses.dataclass
class Setup:
  """What every command builds from a config before training.

  Replica r trains with seed ``seeds[r]`` at learning rate ``lrs[r]``; a plain
  IMP run has one LR, a sanity check puts its LR grid on the replica axis.
  ``axis`` names the replicas: ``lr`` x ``seed`` (a setup from ``lrs``) or
  ``point`` x ``seed`` (grid points, indices into the ``points`` given).
  """
  cfg: ml_collections.ConfigDict
  data: data_lib.Dataset
  model: Any
  trainer: loop_lib.Trainer
  seeds: list[int]
  lrs: list[float]
  hparams: optim.HParams
  prune_fractions: np.ndarray | None = None  # per replica; None: the config's
  rewind_steps: np.ndarray | None = None  # per replica; None: the config's
  axis: ReplicaAxis | None = None


#: Config keys a grid point may set per replica within one program.
REPLICA_KEYS = ("train.lr", "train.weight_decay", "imp.prune_fraction",
                "imp.rewind_step")


def open_run(cfg: ml_collections.ConfigDict, workdir: str, command: str,
             summary_type: type) -> tuple[Workdir, Any]:
  """Claim ``workdir`` for ``command`` with ``cfg`` (a different config is
  refused) and return it with its finished summary, or None if the run is
  not done: the run-directory contract's entry, shared by every command."""
  wd = Workdir(workdir, command)
  done = wd.finished(summary_type)
  wd.claim(cfg, config_lib.default_config())
  if done is not None:
    tqdm.write(f"{wd.path} holds a finished `{command}` run with this "
               "config; nothing recomputed (use a new --workdir to run "
               "again).", file=sys.stderr)
  return wd, done


def setup_of_model(cfg: ml_collections.ConfigDict, data: Any, model: Any,
                   task: Any, prunable: str, seeds: list[int],
                   eval_batch_size: int = 256) -> Setup:
  """A :class:`Setup` for a model built by the caller: one Program and
  Trainer, every replica at ``cfg.train``'s one learning rate and weight
  decay (the text commands, ``pretrain`` and ``transfer``, whose encoder
  options come from their own section or a checkpoint)."""
  prog = step_lib.Program(model=model, task=task,
                          recipe=config_lib.recipe(cfg, False),
                          normalize=data.normalize, prunable=prunable)
  trainer = loop_lib.Trainer(prog, data, eval_batch_size=eval_batch_size,
                             replica_loop=cfg.train.replica_loop,
                             shard=cfg.train.shard_replicas)
  lrs = [float(cfg.train.lr)] * len(seeds)
  hp = optim.stack_hparams(lrs, [float(cfg.train.weight_decay)] * len(seeds))
  return Setup(cfg, data, model, trainer, seeds, lrs, hp)


def load_data_unchecked(cfg: ml_collections.ConfigDict) -> data_lib.Dataset:
  """The ``data`` section's dataset (a graph set with the ``graph``
  section's split and sources)."""
  if data_lib.is_graph(cfg.data.name):
    options = data_lib.graph_options(cfg.graph)
  elif data_lib.is_text(cfg.data.name):
    options = data_lib.text_options(cfg.data.text)
  else:
    options = cfg.data.get("lssed")
  data = data_lib.load(cfg.data.name, cfg.data.data_dir or None,
                       cfg.data.val_fraction, local_dir=cfg.data.dir or None,
                       options=options)
  return data


def load_data(cfg: ml_collections.ConfigDict) -> data_lib.Dataset:
  """The ``data`` section's dataset; a ``train.batch_size`` larger than its
  training set is one clear error."""
  data = load_data_unchecked(cfg)
  if cfg.train.batch_size > len(data.train_y):
    raise config_lib.ConfigError(
        f"train.batch_size={cfg.train.batch_size} exceeds the "
        f"{len(data.train_y)} training examples of {cfg.data.name}.")
  return data


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
  if cfg.get("init") and cfg.init.checkpoint:
    raise config_lib.ConfigError(
        f"init.checkpoint={cfg.init.checkpoint!r} is read only by `jaxticket"
        " pretrain` and `jaxticket transfer` so far (its text models); this command trains image "
        "models from a fresh init: drop --config.init.checkpoint.")
  data = load_data(cfg)
  task = make_task(cfg, data)
  model = models_lib.build(cfg.model.name, num_outputs(cfg, data),
                           cfg.model.width, cfg.model.depth or None,
                           cfg.model.residual, input_shape=data.input_shape,
                           **model_options(cfg, data))
  prog = step_lib.Program(
      model=model, task=task,
      recipe=config_lib.recipe(cfg, data.augment), normalize=data.normalize,
      parametrization=Parametrization(
          models_lib.TRAINED.get(cfg.model.name, "")),
      prunable=cfg.masks.prunable)
  trainer = loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                             shard=cfg.train.shard_replicas)
  seed_values = [cfg.seed + i for i in range(cfg.seeds)]
  if points is None and lrs:
    axis = ReplicaAxis.of(lr=[float(lr) for lr in lrs], seed=seed_values)
    points = [{"train.lr": float(lr)} for lr in lrs]
  else:
    points = points or [{}]
    axis = ReplicaAxis.of(point=range(len(points)), seed=seed_values)
  for point in points:
    unknown = set(point) - set(REPLICA_KEYS)
    if unknown:
      raise config_lib.ConfigError(
          f"{sorted(unknown)} cannot vary within one program; per-replica "
          f"keys are {list(REPLICA_KEYS)}.")
  value = lambda point, key: float(point.get(key, config_lib.get_value(cfg,
                                                                      key)))
  point_of = [points[i] for i in range(len(points))
              for _ in range(cfg.seeds)]  # the axis is point-major
  per_replica = lambda key: [value(p, key) for p in point_of]
  seeds = axis.values("seed")
  replica_lrs = per_replica("train.lr")
  hparams = optim.stack_hparams(replica_lrs, per_replica("train.weight_decay"))
  fractions = np.array(per_replica("imp.prune_fraction"), np.float32)
  for f in fractions:
    if not 0 < f < 1:
      raise config_lib.ConfigError(
          f"imp.prune_fraction={f} is out of range: must be in (0, 1).")
  rewinds = np.array(per_replica("imp.rewind_step"), np.int32)
  for k in rewinds:
    if not 0 <= k < cfg.train.steps:
      raise config_lib.ConfigError(
          f"imp.rewind_step={k} is out of range: must be in [0, "
          f"train.steps={cfg.train.steps}).")
  return Setup(cfg, data, model, trainer, seeds, replica_lrs, hparams,
               fractions, rewinds, axis)


def model_options(cfg: ml_collections.ConfigDict, data: Any) -> dict:
  """What ``models.build`` needs to know of the data beyond its shape: a
  text model on a text set gets the set's vocabulary and ``max_len`` = its
  ``seq_len``, and pre-LayerNorm blocks (Xiong et al. 2020: trains from
  scratch without a long warm-up, as the benchmark's short SGD recipe
  does; ``pretrain``'s default too). ``{}`` for every other model."""
  if (cfg.model.name in models_lib.TEXT_MODELS and
      getattr(data, "vocab_size", 0)):
    return {"vocab_size": int(data.vocab_size),
            "max_len": int(data.input_shape[0]), "norm": "pre"}
  return {}


def context_kwargs(data: Any) -> dict:
  """``{"context": ...}`` for a model call on ``data`` (a graph set's
  features and edges), ``{}`` for self-contained examples: what a
  ``model.init``/``apply`` outside the Trainer's step must pass."""
  return step_lib.context_kwargs(getattr(data, "context", None))


def make_task(cfg: ml_collections.ConfigDict, data: data_lib.Dataset
              ) -> tasks.Task:
  """The dataset's task trained with ``task.loss`` (cross-entropy, or Deep
  Gamblers' loss with payoff ``task.payoff``; one-line errors)."""
  return tasks.build(data.task, cfg.task.loss, cfg.task.payoff,
                     cfg.task.pretrain_steps, data.num_classes)


def task_changes(cfg: ml_collections.ConfigDict, source_dir: str
                 ) -> list[str]:
  """How the ``task`` section (loss, payoff, pretraining) of the run in
  ``source_dir`` differs from ``cfg``'s ([] when it has no config.json).
  A ticket or curve trained under another loss (e.g. cross-entropy vs the
  gambler's, whose net has one more output) is not this run's reference."""
  path = os.path.join(source_dir, "config.json")
  if not os.path.isfile(path):
    return []
  source = fill_missing(read_json(path),
                        json.loads(config_json(config_lib.default_config())))
  return diff(dict(source["task"]), dict(json.loads(config_json(cfg))["task"]),
              "task.")


def num_outputs(cfg: ml_collections.ConfigDict, data: data_lib.Dataset
                ) -> int:
  """The model's output width: the classes, plus the abstain output when
  ``task.loss=gambler``."""
  return data.num_classes + tasks.extra_outputs(make_task(cfg, data))


def dense_masks(cfg: ml_collections.ConfigDict, params: PyTree) -> PyTree:
  """The all-kept mask of stacked (replica-axis) params, per ``masks.prunable``."""
  return jax.vmap(lambda p: masks_lib.ones(p, cfg.masks.prunable))(params)


def copy_tree(tree: PyTree) -> PyTree:
  """A copy that survives donation of the original's buffers."""
  return jax.tree.map(jnp.copy, tree)


class LevelLogger:
  """Writes one metrics.jsonl row per replica per evaluation, drives the
  progress bar of one level and watches for divergence."""

  def __init__(self, workdir: Workdir, level: int, seeds: list[int],
               lrs: list[float], density: np.ndarray, bar: Any,
               extra: dict | None = None, stop_on_divergence: bool = False,
               row_extra: Any = None):
    self.workdir, self.level, self.seeds, self.lrs = workdir, level, seeds, lrs
    self.extra = extra or {}
    # ``row_extra(state, evaluation) -> [dict per replica]``: fields merged
    # into each replica's row last (they may override e.g. ``density``).
    self.row_extra = row_extra
    self.density, self.bar = density, bar
    self.stop_on_divergence = stop_on_divergence
    self.last: loop_lib.Evaluation | None = None
    self.last_loss: np.ndarray | None = None
    self.diverged_at: np.ndarray | None = None

  def __call__(self, state: step_lib.TrainState,
               ev: loop_lib.Evaluation, losses: np.ndarray) -> None:
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
    per_replica = (self.row_extra(state, ev) if self.row_extra is not None
                   else [{}] * len(self.seeds))
    self.workdir.log_metrics([
        {**self.extra, "level": self.level, "replica": r, "seed": s,
         "lr": self.lrs[r], "step": int(steps[r]),
         "density": float(self.density[r]),
         "train_loss": _finite_or_none(train_loss[r]),
         "val_loss": _finite_or_none(ev.val_loss[r]),
         "val_accuracy": float(ev.val_accuracy[r]),
         "test_loss": _finite_or_none(ev.test_loss[r]),
         "test_accuracy": float(ev.test_accuracy[r]),
         "test_aurc": _finite_or_none(ev.test_aurc[r]),
         "test_aurc_softmax": _finite_or_none(ev.test_aurc_softmax[r]),
         "diverged": bool(diverged_at[r] >= 0),
         "diverged_at": int(diverged_at[r]) if diverged_at[r] >= 0 else None,
         **per_replica[r]}
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
                state: step_lib.TrainState, mask: PyTree,
                hparams: optim.HParams, trainer: loop_lib.Trainer,
                stops: tuple[int, ...] = (), on_stop=None,
                progress: bool = True, seeds: list[int] | None = None,
                lrs: list[float] | None = None, desc: str | None = None,
                extra: dict | None = None, staggered: bool | None = None,
                density: np.ndarray | None = None, row_extra: Any = None
                ) -> tuple[step_lib.TrainState, dict]:
  """Train one level to ``train.steps``; returns (trained state, its row).

  The row aggregates over all replicas and keeps the per-replica final
  evaluation under ``"evaluation"`` (host arrays). ``seeds``/``lrs`` label
  the replicas (default: the Setup's), ``extra`` is added to metric rows,
  ``row_extra(state, evaluation)`` gives per-replica row fields;
  ``staggered`` is passed to :meth:`~jaxticket.core.loop.Trainer.train`;
  ``density`` is what the rows report per replica (default: the mask's
  kept fraction at the start; a mask updater's target, e.g.).
  """
  seeds = s.seeds if seeds is None else seeds
  lrs = s.lrs if lrs is None else lrs
  if density is None:
    density = masks_lib.replica_densities(mask)
  density = np.asarray(density, np.float64)
  start = int(np.asarray(state.step).min())
  desc = desc or f"level {level} (density {density.mean():.3f})"
  with tqdm(total=s.cfg.train.steps - start, disable=not progress, desc=desc,
            unit="step", leave=True, dynamic_ncols=True) as bar:
    logger = LevelLogger(workdir, level, seeds, lrs, density, bar, extra,
                         s.cfg.train.stop_on_divergence, row_extra)
    state = trainer.train(state.replace(mask=mask), hparams, s.cfg.train.steps,
                          s.cfg.train.eval_every, stops=stops,
                          on_eval=logger, on_stop=on_stop, progress=bar,
                          staggered=staggered)
  ev, at = logger.last, logger.diverged_at
  ok = at < 0
  row = {"level": level, "density": float(density.mean()),
         "density_per_seed": [float(d) for d in density],
         "test_accuracy": stats(ev.test_accuracy, ok),
         "val_accuracy": stats(ev.val_accuracy, ok),
         "test_loss": stats(ev.test_loss, ok),
         **selective_stats(ev, ok),
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


def selective_stats(ev: loop_lib.Evaluation, ok: np.ndarray | None = None
                    ) -> dict:
  """Mean/std/per-seed values of the test AURC (the task's own ranking, and the softmax
  response's) over the replicas ``ok``; empty for a task without
  confidences (regression), whose AURC is NaN."""
  aurc = np.asarray(ev.test_aurc)
  ok = np.ones(aurc.shape, bool) if ok is None else np.asarray(ok)
  if not np.isfinite(aurc[ok]).any():
    return {}
  return {"test_aurc": stats(aurc, ok),
          "test_aurc_softmax": stats(np.asarray(ev.test_aurc_softmax), ok)}


def row_to_json(row: dict) -> dict:
  """A :func:`train_level` row as JSON (its evaluation as lists)."""
  ev = row["evaluation"]
  return {**row, "evaluation": {k: np.asarray(v).tolist()
                                for k, v in ev._asdict().items()}}


def row_from_json(row: dict) -> dict:
  """Inverse of :func:`row_to_json` (evaluation arrays float32, as trained)."""
  saved = row["evaluation"]
  # stages written before the selective metrics existed: NaN there
  nan = lambda shape: np.full(shape, np.nan, np.float32)
  r = len(saved["test_accuracy"])
  missing = {"test_aurc": nan(r), "test_aurc_softmax": nan(r),
             "test_risk": nan((r, len(selective.COVERAGES)))}
  ev = loop_lib.Evaluation(**{**missing, **{
      k: np.asarray(v, np.float32) for k, v in saved.items()}})
  return {**row, "evaluation": ev}


def checkpoint_stops(begin: int, until: int, every: int) -> set[int]:
  """Chunk boundaries at every multiple of ``every`` in (begin, until):
  present in every run of a stage, resumed or not, so that a resumed run
  scans exactly the chunks of an uninterrupted one."""
  return set(range(begin - begin % every + every, until, every)) if every \
      else set()


def stage_started(wd: Workdir, name: str) -> bool:
  """Whether stage ``name`` of :func:`train_stage` finished or left a
  checkpoint in ``wd`` (a resumed run then needs nothing computed before
  it)."""
  ckpts = wd.file("checkpoints", "stages", name)
  return os.path.exists(Stages(wd).path(name)) or (
      os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts)))


def train_stage(s: Setup, wd: Workdir, name: str, level: int,
                state: step_lib.TrainState, mask: PyTree,
                hparams: optim.HParams, trainer: loop_lib.Trainer, *,
                progress: bool = True, seeds: list[int] | None = None,
                lrs: list[float] | None = None, desc: str | None = None,
                extra: dict | None = None, keep_state: bool = False,
                density: np.ndarray | None = None
                ) -> tuple[step_lib.TrainState | None, dict]:
  """:func:`train_level` as a resumable stage of a run (sanity controls,
  small-dense nets, LMC children, ...).

  The stage checkpoints its whole state under ``checkpoints/stages/NAME``
  every ``checkpoint.every_steps`` steps; a killed run that calls it again
  with the same arguments continues from the newest readable checkpoint
  (its metric rows truncated to it) and ends bit-identical to an
  uninterrupted run. A finished stage leaves ``stages/NAME.json`` (its
  row) and, with ``keep_state``, its trained params, BatchNorm
  statistics and final mask (a mask updater's, e.g. GEM-MINER's freezing,
  is returned as it ended); calling it again then trains nothing. Returns (trained
  state or None when ``keep_state`` is off and the stage was already
  done, row). Metric rows carry ``"stage": NAME``.
  """
  cfg = s.cfg
  stages = Stages(wd)
  final_path = wd.file("checkpoints", "stages", f"{name}_final")
  done = stages.get(name)
  if done is not None:
    row = row_from_json(done)
    if not keep_state:
      return None, row
    saved = checkpoint.load_tree(final_path)
    # the mask a mask updater ended with (older stages saved none)
    end_mask = jax.device_put(saved["mask"]) if "mask" in saved else mask
    return state.replace(params=jax.device_put(saved["params"]),
                         batch_stats=jax.device_put(saved["batch_stats"]),
                         mask=end_mask), row
  say = lambda text: tqdm.write(text, file=sys.stderr)
  staggered = bool(np.ptp(np.asarray(jax.device_get(state.step))))
  ckpt_dir = wd.file("checkpoints", "stages", name)
  ckpts = checkpoint.TrainCheckpoints(ckpt_dir, cfg.checkpoint.keep)
  resumed = ckpts.restore_latest({"state": state.replace(mask=None),
                                  "mask": mask},
                                 warn=lambda m: say("warning: " + m))
  if resumed is None:
    wd.truncate_metrics(lambda r: r.get("stage") != name)
  else:
    state = resumed[1]["state"]
    mask = resumed[1]["mask"]
    step = int(np.asarray(state.step).min())
    say(f"resuming stage {name} of {wd.path} at step {step} "
        f"(checkpoint {resumed[0]}).")
    wd.truncate_metrics(lambda r: r.get("stage") != name or
                        r["step"] <= step)
  every = cfg.checkpoint.every_steps
  begin = int(np.asarray(state.step).min())

  def on_stop(step: int, st: step_lib.TrainState) -> None:
    ckpts.save(step, {"state": st.replace(mask=None), "mask": st.mask})

  trained, row = train_level(
      s, wd, level, state, mask, hparams, trainer,
      stops=tuple(sorted(checkpoint_stops(begin, cfg.train.steps, every))),
      on_stop=on_stop, progress=progress, seeds=seeds, lrs=lrs, desc=desc,
      extra={**(extra or {}), "stage": name}, staggered=staggered,
      density=density)
  ckpts.close()
  if keep_state:
    checkpoint.save_tree(final_path, {"params": trained.params,
                                      "batch_stats": trained.batch_stats,
                                      "mask": trained.mask})
  stages.put(name, row_to_json(row))
  if runtime.writes_files():
    shutil.rmtree(ckpt_dir, ignore_errors=True)
  return trained, row
