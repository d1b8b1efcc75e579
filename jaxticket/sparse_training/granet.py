"""GraNet (Liu, Chen, Chen, Atashgahi, Yin, Kou, Shen, Pechenizkiy, Wang &
Mocanu, NeurIPS 2021, "Sparse Training via Boosting Pruning Plasticity with
Neuroregeneration"): global gradual magnitude pruning plus zero-cost
neuroregeneration.

At every update tick t (t = start_step + i * Delta T, and end_step):

1. *Gradual pruning* (while t <= end_step): keep the K_t largest |w| over
   all prunable layers together (one global threshold), with
   K_t = final + (initial - final) * (1 - p)^3, p = (t - start) / (end -
   start) (the paper's s_t = s_f + (s_i - s_f)(1 - p)^3 in counts).
2. *Neuroregeneration* (every tick until the end of training): in each
   layer drop ``ceil(r_t * nnz)`` of its active weights with the smallest
   |w| and regrow as many where the dense |gradient| is largest among the
   connections not kept; the death rate r_t decays from ``death_rate``
   to ``death_rate_min`` by a cosine over all ``total_steps`` (the code's
   ``CosineDecay(prune_rate, T_max=len(loader)*epochs, eta_min=0.005)``).
   Regrowth keeps the count after step 1, so the total density follows
   the schedule of step 1 exactly.

Dense-to-sparse starts from the dense mask (s_i = 0); sparse-to-sparse
from a sparse (ERK) mask, its density at ``init`` being s_i. With
``death_rate=0`` this is global gradual magnitude pruning (GraNet's 'GMP').

Where we follow the code (VITA-Group/GraNet, ``sparselearning/core.py``)
and where not: the code prunes only while ``curr_iter <= final_iter - 1``,
one tick short of p = 1 (final density s_f + (s_i - s_f) / n^3); we follow
the paper and reach s_f exactly at ``end_step``. Its thresholds (``>``
against the k-th value) can drop ties; our counts are exact. The code
zeroes globally pruned weights before regrowing, so a weight pruned by
step 1 and regrown by step 2 at the same tick restarts at 0; here it keeps
its value and moments (as a dropped-and-regrown weight does in both).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.sparse_training import selection as sel

PyTree = Any


@dataclasses.dataclass(frozen=True)
class GraNet:
  """GraNet for one replica.

  The state holds ``initial_count`` (active weights of the mask at init)
  and ``final_count`` (default ``round(final_density * total)``; replace it
  per replica for an exact target), int32 scalars.
  """
  start_step: int
  end_step: int
  total_steps: int
  update_every: int = 100
  death_rate: float = 0.5
  death_rate_min: float = 0.005
  final_density: float = 0.1
  static: bool = dataclasses.field(default=False, init=False)

  def __post_init__(self):
    sel.check_schedule("GraNet", self.update_every,
                       death_rate=self.death_rate,
                       death_rate_min=self.death_rate_min)
    if not 0 <= self.start_step < self.end_step <= self.total_steps:
      raise ValueError(
          f"GraNet: need 0 <= start_step ({self.start_step}) < end_step "
          f"({self.end_step}) <= total_steps ({self.total_steps}).")
    if not 0.0 < self.final_density <= 1.0:
      raise ValueError(f"GraNet: final_density={self.final_density} must be "
                       "in (0, 1].")

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    del params
    masks = sel.prunable(mask)[0]
    total = sum(m.size for m in masks)
    return {"initial_count": jnp.sum(sel.layer_counts(mask)),
            "final_count": jnp.asarray(round(self.final_density * total),
                                       jnp.int32)}

  def is_update_step(self, step: jax.Array) -> jax.Array:
    t = sel.completed(step)
    grid = (t - self.start_step) % self.update_every == 0
    return (grid | (t == self.end_step)) & (t >= self.start_step) & (
        t < self.total_steps)

  def target(self, step: jax.Array, state: PyTree) -> jax.Array:
    """Total kept count after the update at ``step``."""
    return sel.cubic_count(sel.completed(step), self.start_step,
                           self.end_step, state["initial_count"],
                           state["final_count"])

  def rate(self, step: jax.Array) -> jax.Array:
    """The death rate r_t at the update after ``step``."""
    return sel.cosine(sel.completed(step), self.total_steps, self.death_rate,
                      self.death_rate_min)

  def update(self, step, params, grads, mask, state, key):
    del key
    masks, (weights, grad_leaves) = sel.prunable(mask, params, grads)
    # 1. Global gradual magnitude pruning.
    scores = jnp.concatenate([jnp.where(m, jnp.abs(w), sel.NEG).ravel()
                              for m, w in zip(masks, weights)])
    active = sum(jnp.sum(m, dtype=jnp.int32) for m in masks)
    keep = sel.keep_top(scores, jnp.minimum(self.target(step, state), active))
    pruned, start = [], 0
    for m in masks:
      pruned.append(keep[start:start + m.size].reshape(m.shape))
      start += m.size
    # 2. Zero-cost neuroregeneration, per layer.
    rate = self.rate(step)
    new = []
    for m, w, g in zip(pruned, weights, grad_leaves):
      nnz = jnp.sum(m, dtype=jnp.int32)
      n_drop = jnp.ceil(rate * nnz - 1e-3).astype(jnp.int32)
      new.append(sel.drop_and_grow(m, w, jnp.abs(g), n_drop))
    return sel.replace_prunable(mask, new), state
