"""A task whose model also emits a penalty: the last output column.

Some models compute a regularizer of their own inside the forward pass,
from parameters the loss cannot see otherwise (HAT's attention-mask
sparsity term needs the earlier tasks' frozen masks, Serra et al. 2018,
Eq. 5). Such a model appends the (per-example) penalty as one extra output
column; ``Penalized(base, weight)`` trains ``base`` on the other columns
plus ``weight`` times that column, and scores with ``base`` alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Penalized:
  """``base`` on ``outputs[..., :-1]`` + ``weight * outputs[..., -1]``."""
  base: Any
  weight: float
  extra_outputs: int = 1

  @property
  def score_name(self) -> str:
    return self.base.score_name

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    losses, scores = self.base.per_example(outputs[..., :-1], targets)
    return losses + self.weight * outputs[..., -1], scores


__all__ = ["Penalized"]
