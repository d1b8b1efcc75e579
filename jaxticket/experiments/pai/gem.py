"""``gem_miner`` in ``jaxticket pai``: GEM-MINER's masks (Sreenivasan et
al., NeurIPS 2022), learned by training scores over each replica's frozen
theta_0 (:mod:`jaxticket.models.gem_miner`).

All replicas of a build (densities x seeds) are ONE program on the replica
axis: a :class:`~jaxticket.models.supermask.Supermask` over the run's model
with the GEM-MINER rule, trained by the platform's one step with
``Parametrization.scores(projection(rule))`` (scores only, clipped to
[0, 1] after each step) and the :class:`~jaxticket.models.gem_miner.
IterativeFreezing` updater (the freeze flag is the mask over the scores;
each replica's target density is its frozen ``keep`` leaf). The score phase
(``pai.gem_steps`` SGD steps at ``pai.gem_lr``, ``pai.gem_schedule``, L2
lambda = ``pai.gem_lambda`` as coupled weight decay 2 lambda on the scores,
a freeze every ``pai.gem_freeze_every`` epochs) is a resumable
``common.train_stage`` (``stages/gem_miner_<variant>.json``, its metric
rows hold the gems' accuracy *before* weight training). Its masks then go
through the same weight training, Su et al.'s checks and verdict as every
PaI method's. The corrupted-data checks retrain the scores on the
corrupted training set (:func:`jaxticket.experiments.pai.scoring.dataset`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.checks import ConfigError
from jaxticket.core.parametrization import Parametrization
from jaxticket.experiments import common
from jaxticket.experiments.pai import scoring
from jaxticket.models import gem_miner, supermask

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The score phase of one data variant: optimizer steps, steps between
  freezes, number of freezes."""
  steps: int
  period: int
  freezes: int


def schedule_of(cfg: ml_collections.ConfigDict, data: Any) -> Schedule:
  """``pai.gem_steps`` (0 = ``train.steps``) with a freeze every
  ``pai.gem_freeze_every`` epochs of ``data``'s training split."""
  steps = int(cfg.pai.gem_steps or cfg.train.steps)
  per_epoch = step_lib.steps_per_epoch(len(data.train_y),
                                       cfg.train.batch_size)
  period = max(1, int(round(cfg.pai.gem_freeze_every * per_epoch)))
  return Schedule(steps, period, gem_miner.schedule(steps, period))


def recipe_of(cfg: ml_collections.ConfigDict, base: optim.Recipe,
              steps: int) -> optim.Recipe:
  """The score phase's recipe: SGD with ``train.momentum`` (coupled decay:
  the L2 penalty's exact gradient), ``pai.gem_schedule`` over ``steps``,
  the training recipe's batch size, augmentation and precision (the
  authors' hc_iter: SGD 0.1, momentum 0.9, cosine, batch 128)."""
  return dataclasses.replace(base, steps=steps, optimizer="sgd",
                             nesterov=False, schedule=cfg.pai.gem_schedule,
                             warmup_steps=0)


#: Score-phase trainers, keyed by program, data variant and schedule (the
#: program is kept with its trainer so that its id stays unique).
_TRAINERS: dict[tuple, tuple[Any, ...]] = {}


@dataclasses.dataclass(frozen=True)
class GemMinerMethod:
  """A :class:`~jaxticket.experiments.pai.methods.MaskMethod` that learns
  its masks (one score phase per data variant)."""
  name: str = "gem_miner"
  summary: str = ("GEM-MINER (Sreenivasan et al. 2022): scores in [0, 1] "
                  "trained over frozen theta_0, [p > 1/2] straight-through, "
                  "L2 pai.gem_lambda, iterative freezing to the density")
  data_dependent: bool = True
  #: Learns its masks by training: on the layer-collapse grid only with
  #: ``pai.gem_collapse`` (one score phase per grid density).
  trains: bool = True

  def min_density(self, shapes, paths, cfg) -> float:
    del shapes, paths, cfg
    return 0.0

  def check(self, cfg: ml_collections.ConfigDict, data: Any) -> None:
    """One clear line when no freeze fits in the score phase (the freeze
    period is in epochs, so this needs the data)."""
    sched = schedule_of(cfg, data)
    if sched.freezes < 1:
      raise ConfigError(
          f"pai.gem_freeze_every={cfg.pai.gem_freeze_every:g} epochs "
          f"({sched.period} steps) leaves no freeze in the "
          f"{sched.steps}-step score phase (pai.gem_steps, 0 = train.steps): "
          "lower pai.gem_freeze_every or raise pai.gem_steps.")

  def trainer(self, cfg: ml_collections.ConfigDict, prog: step_lib.Program,
              data: Any, variant: str, sched: Schedule
              ) -> tuple[supermask.Supermask, loop_lib.Trainer]:
    """The score-phase program over ``prog``'s model (compiled once per
    shape, cached)."""
    key = (id(prog), variant, sched, cfg.pai.gem_schedule,
           cfg.masks.prunable)
    if key not in _TRAINERS:
      rule = gem_miner.GemMinerRule()
      model = supermask.Supermask(prog.model, rule, keep=1.0,
                                  scored=cfg.masks.prunable)
      score_prog = prog._replace(
          model=model, recipe=recipe_of(cfg, prog.recipe, sched.steps),
          parametrization=Parametrization.scores(supermask.projection(rule)),
          updater=gem_miner.IterativeFreezing(sched.period, sched.freezes),
          prunable=gem_miner.SCORES)
      trainer = loop_lib.Trainer(score_prog, data,
                                 replica_loop=cfg.train.replica_loop,
                                 shard=cfg.train.shard_replicas)
      _TRAINERS[key] = (prog, model, trainer)
    return _TRAINERS[key][1:]

  def start(self, task, trainer: loop_lib.Trainer) -> step_lib.TrainState:
    """The score phase's start: each replica's theta_0 frozen (its
    BatchNorm statistics too), U[0, 1] scores from its key, its target
    density in ``keep``, every weight live."""
    state = trainer.init(task.keys)
    params = gem_miner.merge_weights(task.params, state.params)
    params = supermask.with_keep(params, np.asarray(task.densities,
                                                    np.float32))
    return trainer.restart(state.replace(params=params,
                                         batch_stats=task.batch_stats))

  def build(self, task) -> PyTree:
    cfg = task.cfg
    variant = getattr(task, "variant", "clean")
    data = scoring.dataset(task.data, cfg.seed, variant)
    self.check(cfg, data)
    sched = schedule_of(cfg, data)
    model, trainer = self.trainer(cfg, task.prog, data, variant, sched)
    state = self.start(task, trainer)
    r = len(task.densities)
    lrs = [float(cfg.pai.gem_lr)] * r
    hp = optim.stack_hparams(lrs, [2.0 * float(cfg.pai.gem_lambda)] * r)
    wd = getattr(task, "workdir", None)
    if wd is None:
      state = trainer.train(state, hp, sched.steps, sched.steps)
    else:
      gem_cfg = cfg.copy_and_resolve_references()
      gem_cfg.train.steps = sched.steps
      gem_cfg.train.eval_every = min(int(cfg.train.eval_every), sched.steps)
      s = common.Setup(gem_cfg, data, model, trainer,
                       list(task.seeds or range(r)), lrs, hp)
      tag = getattr(task, "tag", "")
      name = f"{self.name}_{variant}" + (f"_{tag}" if tag else "")
      state, _ = common.train_stage(
          s, wd, name, 0, state, state.mask, hp, trainer,
          progress=getattr(task, "progress", False),
          desc=f"GEM-MINER scores ({variant}, {r} replicas)",
          extra={"method": self.name, "variant": variant},
          keep_state=True, density=task.densities)
    return jax.device_get(gem_miner.kernel_masks(
        state.params, state.mask, task.mask, cfg.pai.gem_final))


__all__ = ["GemMinerMethod", "Schedule", "schedule_of", "recipe_of"]
