"""Sparsity-aware initialization (Evci, Ioannou, Keskin & Dauphin, AAAI
2022, Sec. 3; rigl_tf2 ``init_utils.unit_scaled_init``): each unit's
weights get the scale its *masked* fan-in implies.

A dense fan-in initializer (He / LeCun, every kernel of
:mod:`jaxticket.models`) draws unit j's incoming weights with variance
``scale / fan_in``. Under a mask, unit j has only ``fan_in_j`` incoming
connections, so its pre-activation variance shrinks by ``fan_in_j /
fan_in`` and signals and gradients vanish with depth at high sparsity.
Rescaling the kept weights of unit j by ``sqrt(fan_in / max(1,
fan_in_j))`` gives them variance ``scale / fan_in_j``, what rigl_tf2's
``fanin_normal`` draws afresh, while keeping the model's own distribution
and seed (so a run's replicas still start from the same theta_0, masked
and rescaled). Units are the last kernel axis (Dense ``(in, out)``, Conv
``(..., in, out)``); fan-in counts the kept entries over every other axis.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.core import masks as masks_lib

PyTree = Any

INITS = ("standard", "sparsity_aware")


def masked_fan_in(mask: jnp.ndarray) -> jnp.ndarray:
  """Kept incoming connections per unit (the last axis) of one kernel."""
  return jnp.sum(mask, axis=tuple(range(mask.ndim - 1)), dtype=jnp.int32)


def unit_scale(mask: jnp.ndarray) -> jnp.ndarray:
  """``sqrt(dense fan-in / max(1, masked fan-in))`` per unit."""
  dense = mask[..., 0].size
  return jnp.sqrt(dense / jnp.maximum(masked_fan_in(mask), 1).astype(
      jnp.float32))


def sparsity_aware(params: PyTree, mask: PyTree) -> PyTree:
  """``params`` masked, with every prunable kernel's units rescaled to the
  std their masked fan-in implies (non-prunable leaves unchanged)."""
  return jax.tree.map(
      lambda w, m: w if m is None else jnp.where(
          m, w * unit_scale(m), jnp.zeros_like(w)).astype(w.dtype),
      params, mask, is_leaf=lambda x: x is None)


def initialize(name: str, params: PyTree, mask: PyTree) -> PyTree:
  """``params`` masked, rescaled if ``name`` is ``sparsity_aware``."""
  if name == "sparsity_aware":
    return sparsity_aware(params, mask)
  if name != "standard":
    raise ValueError(f"Unknown sparse init {name!r}; choose one of {INITS}.")
  return masks_lib.apply(params, mask)


