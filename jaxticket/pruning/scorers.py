"""Scorers: map params (and whatever else a method needs) to a score per weight.

A score pytree has the structure of the mask: arrays on prunable leaves, None
elsewhere. Higher score = more important = kept longer. New scorers (SNIP,
GraSP, SynFlow, ...) register here under a name and receive the same keyword
arguments; they may ignore the ones they do not need.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp

from jaxticket import masks as masks_lib
from jaxticket.choices import check_choice

PyTree = Any


class Scorer(Protocol):

  def __call__(self, params: PyTree, mask: PyTree, key: jax.Array,
               **context: Any) -> PyTree:
    ...


def magnitude(params: PyTree, mask: PyTree, key: jax.Array | None = None,
              **context: Any) -> PyTree:
  """|w| (Han et al. 2015; the IMP criterion of Frankle & Carbin 2019)."""
  del key, context
  return masks_lib._map(lambda m, p: jnp.abs(p), mask, params)


def random(params: PyTree, mask: PyTree, key: jax.Array, **context: Any
           ) -> PyTree:
  """Uniform random scores: random pruning, the classic control."""
  del context
  leaves, treedef = jax.tree.flatten(mask, is_leaf=lambda x: x is None)
  keys = iter(jax.random.split(key, max(len(leaves), 1)))
  scored = [None if m is None else jax.random.uniform(next(keys), m.shape)
            for m in leaves]
  del params
  return jax.tree.unflatten(treedef, scored)


SCORERS: dict[str, Callable[..., PyTree]] = {
    "magnitude": magnitude,
    "random": random,
}


def get(name: str) -> Callable[..., PyTree]:
  """The scorer called ``name``; a clear error lists the valid names."""
  check_choice("imp.scorer", name, SCORERS, "pruning scorer")
  return SCORERS[name]
