"""Regression with squared error (teacher-student experiments).

Targets are float vectors [B, D] (or [B]); the loss is the squared error
summed over the D outputs and averaged over the batch, 0.5 * ||f(x) - y||^2
as in the one-hidden-layer teacher-student analyses (e.g. Zhang et al.,
"Why lottery ticket wins?", ICML 2021, Eq. 2). The score is its negative
(higher is better, like accuracy), so selection code treats both tasks
alike.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Regression:
  """Squared-error regression; score: minus the per-example loss."""
  score_name: str = "negative squared error"

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    outputs = outputs.reshape(outputs.shape[0], -1)
    targets = targets.reshape(targets.shape[0], -1).astype(outputs.dtype)
    losses = 0.5 * jnp.sum((outputs - targets) ** 2, axis=-1)
    return losses, -losses
