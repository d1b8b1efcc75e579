"""Gradual magnitude pruning (Zhu & Gupta, 2017, "To prune, or not to
prune"): dense-to-sparse training along a cubic schedule.

At t = start_step, start_step + Delta T, ..., end_step each prunable layer
is pruned by magnitude to

    s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n Delta T))^3     (Eq. 1)

of its weights, here in counts: ``final + (initial - final) * (1 - p)^3``
rounded, p = (t - start) / (end - start), so the last update lands exactly
on the final counts (a last tick at ``end_step`` is added if it is not on
the Delta T grid). Pruned weights never return (the smallest *active*
weights go). Every layer follows its own schedule from its count at
``init`` to its final count: Zhu & Gupta prune each layer to the same
sparsity (``final_counts`` from a uniform density, the default); any
per-layer targets (e.g. ERK counts from ``pruning.ratios``) can be set in
the state. For one global threshold across layers use GraNet with
``death_rate=0`` (its gradual part is exactly that).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.sparse_training import selection as sel

PyTree = Any


@dataclasses.dataclass(frozen=True)
class GMP:
  """Gradual magnitude pruning for one replica.

  The state holds ``initial_counts`` (the mask's per-layer counts at init)
  and ``final_counts`` (default: ``round(final_density * size)`` per layer;
  replace them per replica for exact targets), both int32 [num_layers].
  """
  start_step: int
  end_step: int
  update_every: int = 100
  final_density: float = 0.1
  static: bool = dataclasses.field(default=False, init=False)

  def __post_init__(self):
    sel.check_schedule("GMP", self.update_every)
    if not 0 <= self.start_step < self.end_step:
      raise ValueError(f"GMP: need 0 <= start_step ({self.start_step}) < "
                       f"end_step ({self.end_step}).")
    if not 0.0 < self.final_density <= 1.0:
      raise ValueError(f"GMP: final_density={self.final_density} must be in "
                       "(0, 1].")

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    del params
    counts = sel.layer_counts(mask)
    sizes = np.array([m.size for m in sel.prunable(mask)[0]])
    final = jnp.asarray(np.round(self.final_density * sizes), jnp.int32)
    return {"initial_counts": counts, "final_counts": final}

  def is_update_step(self, step: jax.Array) -> jax.Array:
    t = sel.completed(step)
    grid = (t - self.start_step) % self.update_every == 0
    return (grid | (t == self.end_step)) & (t >= self.start_step) & (
        t <= self.end_step)

  def targets(self, step: jax.Array, state: PyTree) -> jax.Array:
    """Per-layer kept counts after the update at ``step``."""
    return sel.cubic_count(sel.completed(step), self.start_step,
                           self.end_step, state["initial_counts"],
                           state["final_counts"])

  def update(self, step, params, grads, mask, state, key):
    del grads, key
    masks, (weights,) = sel.prunable(mask, params)
    targets = self.targets(step, state)
    new = [sel.keep_top(jnp.where(m, jnp.abs(w), sel.NEG),
                        jnp.minimum(targets[i], jnp.sum(m, dtype=jnp.int32)))
           for i, (m, w) in enumerate(zip(masks, weights))]
    return sel.replace_prunable(mask, new), state
