"""Classification with softmax cross-entropy; the score is accuracy."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxticket.core import selective


@dataclasses.dataclass(frozen=True)
class Classification:
  """Integer labels; logits [B, classes]. Loss: softmax cross-entropy
  (what OpenLTH and Ma et al. train with); score: top-1 accuracy."""
  score_name: str = "accuracy"
  extra_outputs: int = 0

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    losses = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    correct = (jnp.argmax(outputs, -1) == targets).astype(jnp.float32)
    return losses, correct

  def confidence(self, outputs: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
    """The softmax response (largest class probability), twice: a plain
    classifier's own selection score is its softmax response."""
    msp = selective.softmax_response(outputs)
    return msp, msp
