"""The optimizer: an optax chain whose learning rate and weight decay are
traced, per-replica values.

One program serves a whole learning-rate (or weight-decay) grid because the
values are *data*: :class:`HParams` carries them with a replica axis, and
:func:`make_optimizer` builds the chain inside the vmapped step from the
replica's scalars. The chain's *state* never depends on those values, so a
state initialized once serves every grid point.

The chain (PyTorch conventions, which OpenLTH and Ma et al. use):

    coupled decay   (sgd, adam):  g + wd * w          optax.add_decayed_weights
    direction                    momentum / Adam     optax.trace / scale_by_adam
    decoupled decay (adamw):      d + wd * w          optax.add_decayed_weights
    step                          -lr * factor(t) * d optax.scale_by_learning_rate

``factor(t)`` is the schedule (optax schedules, times a linear warm-up) at
the replica's own training step ``t``, not at an optimizer-internal count:
a rewound ticket continues the schedule at its rewind step with a fresh
optimizer state, as IMP with rewinding requires (Frankle et al. 2020).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxticket.core.checks import check_choice

PyTree = Any

OPTIMIZERS = ("sgd", "adam", "adamw")
COMPUTE_DTYPES = ("float32", "bfloat16")
SCHEDULES = ("constant", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The static part of a training recipe (shapes and program structure).

  Attributes:
    steps: total optimizer steps of one training run.
    batch_size: examples per step.
    optimizer: ``sgd`` (momentum, coupled L2 like PyTorch), ``adam`` (coupled
      L2) or ``adamw`` (decoupled weight decay, Loshchilov & Hutter 2019).
    momentum: SGD momentum / Adam beta1.
    nesterov: Nesterov momentum for SGD.
    schedule: ``constant``, ``step`` (multiply by ``gamma`` at each milestone)
      or ``cosine`` (to zero at ``steps``).
    milestones: fractions of ``steps`` where the step schedule decays.
    gamma: step-schedule decay factor.
    warmup_steps: linear warm-up from 0 over this many steps.
    augment: random crop + flip (images only).
    compute_dtype: ``float32``, or ``bfloat16`` for the forward and backward
      pass on accelerators (weights, optimizer state and BatchNorm
      statistics stay float32: "master weights"; the loss is float32).
  """
  steps: int
  batch_size: int = 128
  optimizer: str = "sgd"
  momentum: float = 0.9
  nesterov: bool = False
  schedule: str = "constant"
  milestones: tuple[float, ...] = (0.5, 0.75)
  gamma: float = 0.1
  warmup_steps: int = 0
  augment: bool = False
  compute_dtype: str = "float32"


class HParams(NamedTuple):
  """Hyperparameters that may differ between replicas (traced scalars)."""
  lr: jax.Array
  weight_decay: jax.Array


def stack_hparams(lr: Iterable[float], weight_decay: Iterable[float]
                  ) -> HParams:
  """HParams with a replica axis from per-replica Python floats."""
  return HParams(jnp.asarray(list(lr), jnp.float32),
                 jnp.asarray(list(weight_decay), jnp.float32))


def schedule(recipe: Recipe) -> optax.Schedule:
  """The LR multiplier as an optax schedule of the training step."""
  check_choice("train.schedule", recipe.schedule, SCHEDULES, "schedule")
  if recipe.schedule == "constant":
    base = optax.constant_schedule(1.0)
  elif recipe.schedule == "step":
    bounds = {}
    for m in recipe.milestones:  # equal milestones multiply
      b = round(m * recipe.steps)
      bounds[b] = bounds.get(b, 1.0) * recipe.gamma
    base = optax.piecewise_constant_schedule(1.0, bounds)
  else:
    base = optax.cosine_decay_schedule(1.0, recipe.steps)
  if recipe.warmup_steps <= 0:
    return base
  # Multiplicative warm-up: step t runs at (t + 1) / warmup of the schedule.
  warm = optax.linear_schedule(1.0 / recipe.warmup_steps, 1.0,
                               recipe.warmup_steps - 1)
  return lambda step: base(step) * warm(step)


def lr_factor(step: jax.Array, recipe: Recipe) -> jax.Array:
  """Schedule multiplier at ``step`` (the LR is ``hparams.lr`` times this)."""
  return jnp.asarray(schedule(recipe)(jnp.asarray(step, jnp.int32)),
                     jnp.float32)


def direction(recipe: Recipe) -> optax.GradientTransformation:
  """The update direction of ``recipe.optimizer`` (no decay, no LR)."""
  check_choice("train.optimizer", recipe.optimizer, OPTIMIZERS, "optimizer")
  if recipe.optimizer == "sgd":
    return optax.trace(decay=recipe.momentum, nesterov=recipe.nesterov)
  return optax.scale_by_adam(b1=recipe.momentum)


def make_optimizer(recipe: Recipe, hp: HParams | None = None,
                   step: jax.Array | None = None
                   ) -> optax.GradientTransformation:
  """The whole chain for one replica at training step ``step``.

  ``hp`` and ``step`` may be traced; without them (for ``init``) any values
  give the same state structure.
  """
  wd = 0.0 if hp is None else hp.weight_decay
  lr = 0.0 if hp is None else hp.lr * lr_factor(
      jnp.zeros((), jnp.int32) if step is None else step, recipe)
  coupled = recipe.optimizer != "adamw"
  return optax.chain(
      optax.add_decayed_weights(wd if coupled else 0.0),
      direction(recipe),
      optax.add_decayed_weights(0.0 if coupled else wd),
      optax.scale_by_learning_rate(lr))


def init_optimizer(recipe: Recipe, params: PyTree) -> optax.OptState:
  """A fresh optimizer state (zero moments) for one replica's params."""
  return make_optimizer(recipe).init(params)


def reset_moments(recipe: Recipe, opt_state: optax.OptState,
                  where: PyTree) -> optax.OptState:
  """``opt_state`` with every param-shaped moment zeroed where ``where``
  (a bool tree shaped like the params) is True: weights a mask update
  regrew start with zero momentum, as RigL/SET/GraNet do."""
  return optax.tree_utils.tree_map_params(
      make_optimizer(recipe),
      lambda moment, grew: jnp.where(grew, jnp.zeros_like(moment), moment),
      opt_state, where,
      transform_non_params=lambda x: x)


__all__ = ["Recipe", "HParams", "stack_hparams", "schedule", "lr_factor",
           "direction", "make_optimizer", "init_optimizer", "reset_moments",
           "OPTIMIZERS", "SCHEDULES", "COMPUTE_DTYPES"]
