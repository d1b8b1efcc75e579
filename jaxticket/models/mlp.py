"""Fully connected nets: LeNet-300-100 (LeCun et al. 1998) and a general MLP."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxticket.models.layers import he_normal


class MLP(nn.Module):
  """Flatten, hidden ReLU layers, linear classifier ``head``."""
  hidden: Sequence[int]
  num_classes: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    del train
    x = x.reshape((x.shape[0], -1))
    for i, h in enumerate(self.hidden):
      x = nn.relu(nn.Dense(h, kernel_init=he_normal, name=f"Dense_{i}")(x))
    return nn.Dense(self.num_classes, name="head")(x)
