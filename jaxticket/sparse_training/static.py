"""The static updater: the mask stays as the run started (IMP, OMP, the
controls). The step compiles no update for it, so static training is
exactly the fixed-mask program."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Static:
  """Never updates the mask."""
  static: bool = dataclasses.field(default=True, init=False)

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    del params, mask
    return ()

  def is_update_step(self, step: jax.Array) -> jax.Array:
    return jnp.zeros_like(step, bool)

  def update(self, step, params, grads, mask, state, key):
    del step, params, grads, key
    return mask, state
