"""The Task interface: what is learned, separate from how it is trained.

A task turns model outputs and targets into a training loss and evaluation
metrics. The training core (:mod:`jaxticket.core.step`,
:mod:`jaxticket.core.loop`) knows only this interface; implementations live
in :mod:`jaxticket.tasks` (classification, regression; masked language
modelling and node classification come with the experiments that need them).
"""

from __future__ import annotations

from typing import Protocol

import jax


class Task(Protocol):
  """Loss and metrics of one replica on one batch.

  ``per_example`` returns (losses[B], scores[B]): the training loss is the
  mean of ``losses``; an evaluation averages both over a split. ``score`` is
  the task's higher-is-better metric (accuracy for classification), reported
  as ``*_accuracy`` in metrics and summaries.
  """

  #: Name of the score in reports, e.g. "accuracy".
  score_name: str

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    ...

  # Optional, for classification tasks (evaluations report selective
  # metrics when present, :mod:`jaxticket.core.selective`):
  #   confidence(outputs) -> (own[B], softmax[B]): the task's own selection
  #     score (higher = answered first; e.g. minus the abstain probability)
  #     and the softmax response of its class outputs.
  # Optional, for a loss that changes during training:
  #   training_losses(outputs, targets, step) -> losses[B] (e.g. Deep
  #     Gamblers' cross-entropy pretraining before the gambler's loss).


def prepare(task: Task, key: jax.Array, x: jax.Array, y: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
  """``task.prepare(key, x, y)`` where the task corrupts its inputs (masked
  language modelling draws its masked positions from ``key``); the batch
  unchanged for every other task. Optional member of the interface: a task
  with ``prepare`` gets a fresh key per step and replica in training and a
  fixed key in evaluation."""
  fn = getattr(task, "prepare", None)
  return (x, y) if fn is None else fn(key, x, y)


def mean_loss(task: Task, outputs: jax.Array, targets: jax.Array,
              step: jax.Array | None = None) -> jax.Array:
  """The training loss of a batch: the mean per-example loss (float32).
  With ``step`` (the training step), a task's ``training_losses`` is used
  where it has one."""
  outputs = outputs.astype(jax.numpy.float32)
  by_step = getattr(task, "training_losses", None)
  if step is not None and by_step is not None:
    return by_step(outputs, targets, step).mean()
  losses, _ = task.per_example(outputs, targets)
  return losses.mean()


def confidences(task: Task, outputs: jax.Array
                ) -> tuple[jax.Array, jax.Array] | None:
  """The task's (own, softmax-response) confidence per example, or None
  for a task without one (regression)."""
  fn = getattr(task, "confidence", None)
  return None if fn is None else fn(outputs.astype(jax.numpy.float32))
