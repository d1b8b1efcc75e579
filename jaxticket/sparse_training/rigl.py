"""RigL (Evci, Gale, Menick, Castro & Elsen, ICML 2020): drop the smallest
weights, regrow where the dense gradient is largest.

Every ``update_every`` (Delta T) optimizer steps until ``end_step``
(T_end), in each prunable layer, the fraction

    alpha_t = alpha / 2 * (1 + cos(pi * t / T_end))          (Eq. 1)

of the active weights with the smallest |w| is dropped and as many
connections are grown where |dL/dw| of this step's dense gradient is
largest among the connections not kept (just-dropped ones may come back
and then keep their weight, as in the reference ``_get_update_op``).
Grown weights start at 0 with zero optimizer moments (the training step
enforces both); the active count of every layer is unchanged.

Reference code (google-research/rigl, ``sparse_optimizers_base``): the
number dropped is ``int(n_active * alpha_t)``; we do the same (with a
1e-3 tolerance against float error) and break ties by index instead of the
reference's 1e-5 noise on the drop scores. t counts completed steps (the
update after step ``step`` acts at t = step + 1, as TF's global step does
after ``apply_gradients``). The grow gradient is this step's minibatch
gradient (the TF1 MNIST/CIFAR code); rigl_tf2 uses a separate batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.sparse_training import selection as sel

PyTree = Any


@dataclasses.dataclass(frozen=True)
class RigL:
  """RigL for one replica. ``drop_fraction`` is alpha (in [0, 1)),
  ``end_step`` is T_end (optimizer steps), ``update_every`` Delta T."""
  end_step: int
  drop_fraction: float = 0.3
  update_every: int = 100
  static: bool = dataclasses.field(default=False, init=False)

  def __post_init__(self):
    sel.check_schedule(type(self).__name__, self.update_every,
                       drop_fraction=self.drop_fraction)

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    del params, mask
    return ()

  def is_update_step(self, step: jax.Array) -> jax.Array:
    return sel.on_tick(sel.completed(step), self.update_every, 1,
                       self.end_step)

  def fraction(self, step: jax.Array) -> jax.Array:
    """alpha_t at the update after ``step``."""
    return sel.cosine(sel.completed(step), self.end_step, self.drop_fraction)

  def grow_scores(self, grads: list, key: jax.Array) -> list:
    """|dense gradient| of each prunable layer."""
    del key
    return [jnp.abs(g) for g in grads]

  def update(self, step, params, grads, mask, state, key):
    masks, (weights, grad_leaves) = sel.prunable(mask, params, grads)
    frac = self.fraction(step)
    scores = self.grow_scores(grad_leaves, key)
    new = []
    for m, w, s in zip(masks, weights, scores):
      n_active = jnp.sum(m, dtype=jnp.int32)
      n_drop = jnp.floor(frac * n_active + 1e-3).astype(jnp.int32)
      new.append(sel.drop_and_grow(m, w, s, n_drop))
    return sel.replace_prunable(mask, new), state
