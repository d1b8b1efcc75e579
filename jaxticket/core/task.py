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


def prepare(task: Task, key: jax.Array, x: jax.Array, y: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
  """``task.prepare(key, x, y)`` where the task corrupts its inputs (masked
  language modelling draws its masked positions from ``key``); the batch
  unchanged for every other task. Optional member of the interface: a task
  with ``prepare`` gets a fresh key per step and replica in training and a
  fixed key in evaluation."""
  fn = getattr(task, "prepare", None)
  return (x, y) if fn is None else fn(key, x, y)


def mean_loss(task: Task, outputs: jax.Array, targets: jax.Array
              ) -> jax.Array:
  """The training loss of a batch: the mean per-example loss (float32)."""
  losses, _ = task.per_example(outputs.astype(jax.numpy.float32), targets)
  return losses.mean()
