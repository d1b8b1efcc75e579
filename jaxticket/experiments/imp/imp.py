"""Iterative magnitude pruning (IMP) with rewinding, on a replica axis.

Frankle & Carbin (ICLR 2019): train dense from theta_0, prune a fraction p of
the remaining weights by magnitude, reset the survivors, repeat. Variants:

- ``imp.rewind=init``: reset survivors to theta_0 (the original LTH).
- ``imp.rewind=step``: reset to theta_k, the weights (and BatchNorm
  statistics) at iteration ``imp.rewind_step`` of the dense run, then train
  from step k to the end (Frankle et al., ICML 2020, "weight rewinding").
- ``imp.rewind=lr``: keep the trained survivors and replay the LR schedule
  from step k (Renda et al., ICLR 2020, "LR rewinding").
- ``imp.rewind=finetune``: keep the trained survivors and fine-tune them for
  the level's steps (prune-and-fine-tune; Renda et al.'s fine-tuning
  baseline). The LR is ``imp.finetune_lr``, or by default
  ``imp.finetune_lr_fraction`` (0.1) times the replica's ``train.lr``, and
  the training schedule is replayed from ``imp.rewind_step`` at that peak
  (``imp.finetune_schedule=replay``: the default cosine decays 0.1 x lr to
  0 over the level), so a level of fine-tuning costs exactly what a level
  of retraining costs and the same compiled program runs it;
  ``imp.finetune_schedule=constant`` keeps the LR constant (Renda et al.
  fine-tune at the original schedule's *final* LR; with a cosine schedule
  that LR is ~0, which is why it is not the default).
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
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket.core import checkpoint
from jaxticket import config as config_lib
from jaxticket.core import masks as masks_lib
from jaxticket import pruning
from jaxticket.experiments import registry
from jaxticket.experiments.imp import report
from jaxticket.experiments.imp import settings
from jaxticket.experiments.summaries import ImpSummary
from jaxticket.experiments import common
from jaxticket.experiments.common import (Setup, copy_tree, dense_masks,
                                          checkpoint_stops, row_from_json,
                                          row_to_json, setup, train_level)
from jaxticket.core.workdir import Workdir, read_json, write_json
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib

PyTree = Any


def prune_masks(s: Setup, params: PyTree, mask: PyTree,
                fraction: float | np.ndarray,
                special_fraction: float | None) -> PyTree:
  """Vmapped pruning: each replica ranks only its own weights. ``fraction``
  is one value or one per replica (a sweep over ``imp.prune_fraction``)."""
  cfg = s.cfg
  special = None
  if special_fraction is not None:
    special = masks_lib.select(loop_lib.tree_index(params, 0),
                               cfg.masks.output_layer)
  fn = lambda p, m, k, f: pruning.prune(
      p, m, f, scorer=cfg.imp.scorer, strategy=cfg.imp.strategy,
      special=special, special_fraction=special_fraction, key=k)
  keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(
      loop_lib.replica_keys(s.seeds))
  fractions = jnp.broadcast_to(jnp.asarray(fraction, jnp.float32),
                               (len(s.seeds),))
  return loop_lib.vmapped(fn)(params, mask, keys, fractions)


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


def rewind(cfg: ml_collections.ConfigDict, trained: step_lib.TrainState,
           init: step_lib.TrainState, at_k: step_lib.TrainState,
           mask: PyTree, trainer: loop_lib.Trainer,
           steps: np.ndarray | None = None) -> step_lib.TrainState:
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
  state = state.replace(params=jax.vmap(masks_lib.apply)(state.params, mask),
                        mask=mask)
  return trainer.restart(state)


def finetune_lrs(cfg: ml_collections.ConfigDict, lrs: list[float]
                 ) -> list[float]:
  """The fine-tuning (peak) LR of each replica trained at ``lrs``:
  ``imp.finetune_lr``, or ``imp.finetune_lr_fraction`` x the replica's LR."""
  return [float(cfg.imp.finetune_lr or cfg.imp.finetune_lr_fraction * lr)
          for lr in lrs]


def finetune_setup(s: Setup) -> tuple[loop_lib.Trainer, optim.HParams]:
  """(trainer, hparams) of ``imp.rewind=finetune`` levels: the run's own
  trainer at the fine-tuning LRs (``replay``), or a constant-LR trainer."""
  cfg = s.cfg
  hp = s.hparams._replace(lr=jnp.asarray(finetune_lrs(cfg, s.lrs),
                                         jnp.float32))
  if cfg.imp.finetune_schedule == "replay":
    return s.trainer, hp
  recipe = dataclasses.replace(s.trainer.recipe, schedule="constant",
                               warmup_steps=0)
  trainer = loop_lib.Trainer(s.trainer.prog._replace(recipe=recipe), s.data,
                             replica_loop=s.trainer.replica_loop,
                             shard=s.trainer.shard)
  return trainer, hp


@dataclasses.dataclass
class Outcome:
  """What an IMP run leaves behind for later stages (sanity checks, LMC).

  ``masks[L]`` and ``rows[L]`` belong to level L (masks on the host, with the
  replica axis); ``init``/``at_k``/``dense`` are stacked train states.
  """
  init: step_lib.TrainState
  at_k: step_lib.TrainState
  dense: step_lib.TrainState
  masks: list[PyTree]
  rows: list[dict]


def _position(level: int, step: int, steps: int) -> int:
  """A checkpoint's place in the run: grows with (level, step)."""
  return level * (steps + 1) + step


def _trained_state(init: step_lib.TrainState, saved: dict,
                   step: int | np.ndarray) -> step_lib.TrainState:
  """A stacked state holding a saved level's weights (fresh optimizer)."""
  state = init.replace(params=jax.device_put(saved["params"]),
                       batch_stats=jax.device_put(saved["batch_stats"]),
                       step=jnp.broadcast_to(jnp.asarray(step, init.step.dtype),
                                             init.step.shape))
  if "diverged_at" in saved:
    state = state.replace(diverged_at=jnp.asarray(saved["diverged_at"]))
  return state


def _keep_imp_metric(level: int, step: int):
  """Predicate over metrics rows: IMP-stage rows up to (level, step). Rows
  of later stages (``"stage"``, e.g. a sanity check's controls) are kept:
  each stage truncates its own when it resumes; controls rows of earlier
  versions (``"settings"`` without a stage) are recomputed, so dropped."""
  def keep(row: dict) -> bool:
    if "stage" in row:
      return True
    if "settings" in row:
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
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  ones = dense_masks(cfg, init.params)
  template = {"level": jnp.zeros((), jnp.int32),
              "state": init.replace(mask=None), "mask": ones}
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
    mask = tree["mask"]
    state = tree["state"].replace(mask=mask)
    step = int(np.asarray(state.step).min())
    say(f"resuming {wd.path} from level {level}, step {step} "
        f"(checkpoint {resumed[0]}).")
    wd.truncate_metrics(_keep_imp_metric(level, step))
    saved_rows = read_json(rows_path) if os.path.exists(rows_path) else []
    done = level + 1 if step == steps else level  # levels finished
    finished = [load_level(wd.path, l) for l in range(done)]
    outcome.masks = [saved["mask"] for saved in finished]
    outcome.rows = [row_from_json(row) for row in saved_rows[:done]]
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
    def stop(step: int, st: step_lib.TrainState) -> None:
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
                   {"level": jnp.asarray(level, jnp.int32),
                    "state": st.replace(mask=None), "mask": st.mask})
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
        state = rewind(cfg, source, init, outcome.at_k, mask, trainer,
                       steps=ks)
    begin = int(np.asarray(state.step).min())
    stops = checkpoint_stops(begin, steps, every)
    if level == 0:
      stops.update(k for k in k_stops if k > begin)
    trained, row = train_level(s, wd, level, state, mask, hparams, trainer,
                               stops=tuple(sorted(stops)),
                               on_stop=on_stop(level, mask), progress=progress)
    save_level(wd, level, mask, trained)
    outcome.masks.append(jax.device_get(mask))
    outcome.rows.append(row)
    write_json(rows_path, [row_to_json(r) for r in outcome.rows])
    ckpts.save(_position(level, steps, steps),
               {"level": jnp.asarray(level, jnp.int32),
                "state": trained.replace(mask=None), "mask": trained.mask})
    if level == 0:
      outcome.dense = trained
    state = None
  ckpts.close()
  return outcome


def run(cfg: ml_collections.ConfigDict, workdir: str, *, command: str = "imp",
        progress: bool = True) -> ImpSummary:
  """Run IMP as configured; write the run directory; return the summary.

  ``command='train'`` with ``imp.levels=0`` is plain dense training.
  """
  config_lib.validate(cfg)  # before touching the workdir
  wd, done = common.open_run(cfg, workdir, command, ImpSummary)
  if done is not None:
    return done
  t0 = time.time()
  cfg, auto = resolve_rewind_step(cfg, wd, progress)
  s = setup(cfg)
  outcome = run_levels(s, wd, progress)
  rows = [{k: v for k, v in r.items() if k != "evaluation"}
          for r in outcome.rows]
  summary = ImpSummary(
      levels=rows, seeds=s.seeds, rewind=cfg.imp.rewind,
      rewind_step=cfg.imp.rewind_step, schedule=cfg.imp.schedule,
      strategy=cfg.imp.strategy, model=cfg.model.name,
      dataset=cfg.data.name, wall_time_s=round(time.time() - t0, 2),
      auto_rewind=auto)
  report.write_imp_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(ImpSummary)


def resolve_rewind_step(cfg: ml_collections.ConfigDict, wd: Workdir,
                        progress: bool = True
                        ) -> tuple[ml_collections.ConfigDict, dict | None]:
  """``cfg`` with ``imp.rewind_step=-1`` (automatic) replaced by the
  earliest step of ``lmc.rewind_steps`` at which the dense network is stable
  (Frankle et al. 2020), found by an instability analysis in
  ``WORKDIR/auto_rewind``; returns (cfg, what was chosen and why) or
  (cfg, None) for a fixed step."""
  if cfg.imp.rewind_step != settings.AUTO_REWIND:
    return cfg, None
  lmc = registry.load("lmc")  # lmc builds on imp: no static import
  k, info = lmc.choose_rewind_step(cfg, wd.file("auto_rewind"), progress)
  tqdm.write(f"automatic rewind step: {k} (dense test-error barriers by "
             f"step: {info['test_barrier']})", file=sys.stderr)
  cfg = cfg.copy_and_resolve_references()
  cfg.imp.rewind_step = k
  return cfg, info


def command(cfg: ml_collections.ConfigDict, args: Any) -> ImpSummary:
  """``jaxticket imp``."""
  return run(cfg, args.workdir, command="imp", progress=not args.no_progress)


def console(summary: ImpSummary) -> str:
  return report.imp_table(summary.levels)


def save_level(wd: Workdir, level: int, mask: PyTree,
               state: step_lib.TrainState) -> None:
  """Save a level's masks and trained params/statistics (replica axis kept)."""
  checkpoint.save_tree(wd.file("checkpoints", f"level_{level}"),
                       {"mask": mask, "params": state.params,
                        "batch_stats": state.batch_stats,
                        "diverged_at": state.diverged_at})


def load_level(workdir: str, level: int) -> dict:
  """The masks, params and BatchNorm statistics saved for ``level``."""
  return checkpoint.load_tree(
      Workdir(workdir, "imp").file("checkpoints", f"level_{level}"))


def rewind_weights(cfg: ml_collections.ConfigDict, workdir: str) -> dict:
  """What the levels of the IMP run in ``workdir`` rewind to, stacked over
  seeds: ``{"params", "batch_stats", "step"}`` = theta_0 at step 0
  (``imp.rewind=init``, or ``step`` with k = 0) or theta_k at step k
  (``imp.rewind=step``). Used by experiments that carry a ticket to
  another network (``elastic``)."""
  wd = Workdir(workdir, "imp")
  if cfg.imp.rewind == "step" and cfg.imp.rewind_step > 0:
    saved = checkpoint.load_tree(wd.file("checkpoints", "rewind"))
    return {"params": saved["params"], "batch_stats": saved["batch_stats"],
            "step": np.asarray(saved["step"])}
  if cfg.imp.rewind not in ("init", "step"):
    raise ValueError(f"imp.rewind={cfg.imp.rewind!r} rewinds to trained "
                     "weights, not to theta_0 or theta_k.")
  saved = checkpoint.load_tree(wd.file("checkpoints", "init"))
  n = jax.tree.leaves(saved["params"])[0].shape[0]
  return {"params": saved["params"], "batch_stats": saved["batch_stats"],
          "step": np.zeros(n, np.int32)}
