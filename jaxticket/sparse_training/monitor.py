"""A mask updater that also records the gradient norm at its updates.

Evci, Ioannou, Keskin & Dauphin (AAAI 2022), "Gradient Flow in Sparse
Neural Networks and How Lottery Tickets Win", Sec. 4: dynamic sparse
training improves gradient flow at its mask updates. ``Monitored(inner)``
runs ``inner`` and writes, for each of its updates, the L2 norm of this
step's gradient masked by the old mask and by the new one into a fixed-size
log in its state (inside the compiled loop; read at evaluation points).
Both norms use the same minibatch gradient at the same weights: the change
measures the gradient mass the new connections admit minus what the
dropped ones carried (rigl_tf2 recomputes the gradient on a held-out batch
after the update; with grown weights at 0 and the smallest weights dropped
the two agree to first order).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.core.updater import MaskUpdater, is_static
from jaxticket.sparse_training import selection as sel

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Monitored:
  """``inner`` with a log of (step, norm before, norm after) of its first
  ``capacity`` updates (later ones are counted, not logged)."""
  inner: MaskUpdater
  capacity: int = 64

  @property
  def static(self) -> bool:
    return is_static(self.inner)

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    n = max(int(self.capacity), 1)
    return {"inner": self.inner.init(params, mask),
            "log_step": jnp.full((n,), -1, jnp.int32),
            "log_before": jnp.zeros((n,), jnp.float32),
            "log_after": jnp.zeros((n,), jnp.float32),
            "updates": jnp.zeros((), jnp.int32)}

  def is_update_step(self, step: jax.Array) -> jax.Array:
    return self.inner.is_update_step(step)

  def update(self, step, params, grads, mask, state, key):
    new_mask, inner = self.inner.update(step, params, grads, mask,
                                        state["inner"], key)
    i = state["updates"]
    ok = i < state["log_step"].shape[0]
    put = lambda log, v: jnp.where(ok, log.at[jnp.minimum(
        i, log.shape[0] - 1)].set(v), log)
    return new_mask, {
        "inner": inner,
        "log_step": put(state["log_step"], sel.completed(step)),
        "log_before": put(state["log_before"], sel.masked_norm(grads, mask)),
        "log_after": put(state["log_after"],
                         sel.masked_norm(grads, new_mask)),
        "updates": i + 1}
