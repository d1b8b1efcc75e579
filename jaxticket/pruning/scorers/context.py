"""What a scorer sees: :class:`ScoreContext`, for ONE replica."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence

import jax
import jax.numpy as jnp

from jaxticket.core import masks as masks_lib

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ScoreContext:
  """What a scorer may look at, for ONE replica (vmap it over replicas).

  Attributes:
    params: the weights to score (trained weights for IMP, theta_0 for
      pruning at initialization).
    mask: the current mask; pruned weights stay pruned whatever their score
      (the allocator sees to that), and data-dependent scorers evaluate the
      *masked* network.
    key: PRNG key for random scorers.
    loss_fn: ``loss_fn(params, batch) -> scalar``, the mean training loss of
      a batch (used by SNIP when ``forward`` is not given).
    batches: the batches (``(inputs, targets)``, inputs already normalized)
      a data-dependent scorer evaluates.
    forward: ``forward(params, batch_stats, x, train) -> outputs``, the
      model (train: BatchNorm on batch statistics; otherwise on
      ``batch_stats``). GraSP needs it to divide logits by its temperature,
      SynFlow to run the data-free pass in eval mode.
    output_loss: ``output_loss(outputs, targets) -> scalar`` mean loss.
    batch_stats: this replica's BatchNorm statistics (``{}`` without BN).
    input_shape: one example's shape, for SynFlow's all-ones input.
  """
  params: PyTree
  mask: PyTree
  key: jax.Array | None = None
  loss_fn: Callable[[PyTree, Any], jax.Array] | None = None
  batches: Sequence[Any] = ()
  forward: Callable[[PyTree, PyTree, jax.Array, bool], jax.Array] | None = None
  output_loss: Callable[[jax.Array, Any], jax.Array] | None = None
  batch_stats: PyTree = None
  input_shape: tuple[int, ...] = ()

  def replace(self, **changes) -> "ScoreContext":
    return dataclasses.replace(self, **changes)

  def masked_params(self) -> PyTree:
    """``params`` with the pruned entries zeroed: the network scored."""
    return masks_lib.apply(self.params, self.mask)

  def loss(self, params: PyTree, batch: Any, temperature: float = 1.0
           ) -> jax.Array:
    """Mean loss of ``batch`` at ``params`` with the outputs divided by
    ``temperature`` (GraSP's T); BatchNorm on the batch's statistics."""
    if self.forward is not None and self.output_loss is not None:
      x, y = batch
      outputs = self.forward(params, self.batch_stats or {}, x, True)
      return self.output_loss(outputs.astype(jnp.float32) / temperature, y)
    if self.loss_fn is None:
      raise ValueError("This scorer needs data: give the ScoreContext a "
                       "loss_fn (or forward and output_loss) and batches.")
    if temperature != 1.0:
      raise ValueError("A temperature needs ScoreContext.forward and "
                       "output_loss (the loss of the scaled outputs).")
    return self.loss_fn(params, batch)

  def total_loss(self, params: PyTree, temperature: float = 1.0) -> jax.Array:
    """Sum over ``batches`` of their mean losses (the reference codes sum
    gradients over their scoring batches)."""
    if not self.batches:
      raise ValueError("This scorer needs data: ScoreContext.batches is "
                       "empty.")
    return sum(self.loss(params, b, temperature) for b in self.batches)


class Scorer(Protocol):
  """``scorer(ctx) -> scores``: arrays on prunable leaves, None elsewhere;
  higher = more important = kept longer."""

  def __call__(self, ctx: ScoreContext) -> PyTree:
    ...


def on_prunable(fn: Callable, mask: PyTree, *trees: PyTree) -> PyTree:
  """``fn(*leaves)`` on the prunable leaves of ``mask``, None elsewhere."""
  return masks_lib.map_prunable(lambda m, *xs: fn(*xs), mask, *trees)


def normalize(scores: PyTree, absolute: bool = False,
              eps: float = 0.0) -> PyTree:
  """Scores divided by their global sum (``|sum| + eps`` with
  ``absolute``), as SNIP (Lee et al. 2019, Eq. 6) and GraSP's code do.
  A positive factor: the ranking is unchanged."""
  leaves = [s for s in jax.tree.leaves(scores)]
  total = sum(jnp.sum(s) for s in leaves)
  if absolute:
    total = jnp.abs(total)
  total = total + eps
  safe = jnp.where(total != 0, total, 1.0)
  return jax.tree.map(lambda s: s / safe, scores)


__all__ = ["ScoreContext", "Scorer", "on_prunable", "normalize"]
