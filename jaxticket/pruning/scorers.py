"""Scorers: map a :class:`ScoreContext` to a score per weight.

A score pytree has the structure of the mask: arrays on prunable leaves, None
elsewhere. Higher score = more important = kept longer. Every scorer takes
the same :class:`ScoreContext` (params, mask, key, and for data-dependent
methods such as SNIP, GraSP and SynFlow a loss function and a few batches)
and uses what it needs; new scorers register in :data:`SCORERS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence

import jax
import jax.numpy as jnp

from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import check_choice

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ScoreContext:
  """What a scorer may look at, for ONE replica.

  Attributes:
    params: the weights to score (trained weights for IMP, theta_0 for
      pruning at initialization).
    mask: the current mask; pruned weights stay pruned whatever their score.
    key: PRNG key for random scorers.
    loss_fn: ``loss_fn(params, batch) -> scalar`` for data-dependent scorers
      (SNIP's |g * w|, GraSP's Hessian-gradient product, ...).
    batches: the batches ``loss_fn`` is evaluated on.
  """
  params: PyTree
  mask: PyTree
  key: jax.Array | None = None
  loss_fn: Callable[[PyTree, Any], jax.Array] | None = None
  batches: Sequence[Any] = ()


class Scorer(Protocol):

  def __call__(self, ctx: ScoreContext) -> PyTree:
    ...


def magnitude(ctx: ScoreContext) -> PyTree:
  """|w| (Han et al. 2015; the IMP criterion of Frankle & Carbin 2019)."""
  return masks_lib.map_prunable(lambda m, p: jnp.abs(p), ctx.mask, ctx.params)


def random(ctx: ScoreContext) -> PyTree:
  """Uniform random scores: random pruning, the classic control."""
  leaves, treedef = jax.tree.flatten(ctx.mask, is_leaf=lambda x: x is None)
  keys = iter(jax.random.split(ctx.key, max(len(leaves), 1)))
  scored = [None if m is None else jax.random.uniform(next(keys), m.shape)
            for m in leaves]
  return jax.tree.unflatten(treedef, scored)


SCORERS: dict[str, Scorer] = {
    "magnitude": magnitude,
    "random": random,
}


def get(name: str) -> Scorer:
  """The scorer called ``name``; a clear error lists the valid names."""
  check_choice("imp.scorer", name, SCORERS, "pruning scorer")
  return SCORERS[name]
