"""Shared building blocks: initializers and a conv-BN-ReLU unit."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxticket.models.conv import Conv

#: BatchNorm running-average momentum of every model here (flax convention:
#: ``running = momentum * running + (1 - momentum) * batch``); LMC's
#: statistics re-estimation relies on it.
BN_MOMENTUM = 0.9

#: He et al. (2015) normal init, the usual choice for ReLU nets (OpenLTH too).
he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def scaled(channels: int, width: float) -> int:
  """Channel count times the width multiplier, at least 1."""
  return max(1, int(round(channels * width)))


class ConvBN(nn.Module):
  """Convolution, optional BatchNorm, optional ReLU."""
  features: int
  kernel: Sequence[int]
  strides: Sequence[int] | int = 1
  groups: int = 1
  norm: bool = True
  relu: bool = True

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = Conv(self.features, tuple(self.kernel), strides=self.strides,
             use_bias=not self.norm, feature_group_count=self.groups,
             kernel_init=he_normal)(x)
    if self.norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                       epsilon=1e-5)(x)
    return nn.relu(x) if self.relu else x


class Head(nn.Module):
  """The classifier; named ``head`` so prunability rules can find it."""
  num_classes: int

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return nn.Dense(self.num_classes, name="head")(x)
