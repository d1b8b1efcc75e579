"""Pruning: scorers rank weights, allocators turn ranks into masks.

``prune`` is the one entry point IMP uses: score, group (global / layer-wise,
output layer at its own rate), allocate. Pruning at initialization to target
counts, in one or many rounds, is :func:`rounds.prune_in_rounds`; layer
densities without data are :mod:`ratios`; Su et al.'s controls are
:mod:`controls`. Pure and vmappable.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax

from jaxticket.pruning import allocators, rounds, scorers
from jaxticket.pruning.allocators import (STRATEGIES, fraction_for_density,
                                          fraction_table, group_leaves,
                                          prune_groups)
from jaxticket.pruning.scorers import SCORERS, ScoreContext

PyTree = Any


def prune(params: PyTree, mask: PyTree, fraction: jax.Array, *,
          scorer: str = "magnitude", strategy: str = "global",
          special: PyTree | None = None,
          special_fraction: jax.Array | None = None,
          key: jax.Array | None = None,
          loss_fn: Callable[[PyTree, Any], jax.Array] | None = None,
          batches: Sequence[Any] = ()) -> PyTree:
  """Prune ``fraction`` of the remaining prunable weights of ``params``.

  Args:
    params: parameters to score (e.g. the trained weights, for IMP).
    mask: current mask; already-pruned weights stay pruned.
    fraction: fraction of the *remaining* weights to prune (traceable).
    scorer: name in :data:`SCORERS`.
    strategy: ``global`` (rank across layers) or ``layerwise``.
    special: pytree of bools flagging leaves pruned at ``special_fraction``
      (the output layer in Frankle & Carbin 2019). None: no special leaves.
    special_fraction: their fraction of remaining weights; None = ``fraction``.
    key: PRNG key for random scorers.
    loss_fn, batches: for data-dependent scorers (:class:`ScoreContext`).
  Returns:
    The new mask.
  """
  ctx = scorers.ScoreContext(params, mask, key, loss_fn, tuple(batches))
  scores = scorers.get(scorer)(ctx)
  groups = group_leaves(mask, strategy, special)
  return prune_groups(scores, mask, groups,
                      fraction_table(groups, fraction, special_fraction))


__all__ = ["prune", "prune_groups", "group_leaves", "fraction_table",
           "fraction_for_density", "STRATEGIES", "SCORERS", "ScoreContext", "allocators",
           "scorers", "rounds"]
