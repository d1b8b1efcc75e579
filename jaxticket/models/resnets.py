"""Residual nets: CIFAR ResNet-20/32/56/110 and ResNet-18 (He et al. 2016), and
ResNet-1D for MNIST-1D. ``residual=False`` removes every skip connection, the
plain-net ablation Ma et al. (2021, Sec. 5) use to show how residual
connections change whether IMP finds tickets."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxticket.models.layers import ConvBN, scaled


class BasicBlock(nn.Module):
  """Two 3-wide convs with BN; projection shortcut (1x1 conv + BN) when the
  shape changes. Works for 1-D and 2-D inputs (``ndim`` spatial dims)."""
  features: int
  stride: int
  residual: bool
  ndim: int = 2

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    k = (3,) * self.ndim
    s = (self.stride,) * self.ndim
    y = ConvBN(self.features, k, strides=s)(x, train)
    y = ConvBN(self.features, k, relu=False)(y, train)
    if self.residual:
      if self.stride != 1 or x.shape[-1] != self.features:
        x = ConvBN(self.features, (1,) * self.ndim, strides=s, relu=False)(
            x, train)
      y = y + x
    return nn.relu(y)


class ResNet(nn.Module):
  """Stem conv, stages of :class:`BasicBlock`, global average pool, head.

  The first block of every stage but the first halves the resolution.
  """
  stage_widths: Sequence[int]
  blocks_per_stage: int
  num_classes: int
  width: float = 1.0
  residual: bool = True
  ndim: int = 2

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = ConvBN(scaled(self.stage_widths[0], self.width), (3,) * self.ndim)(
        x, train)
    for i, w in enumerate(self.stage_widths):
      for j in range(self.blocks_per_stage):
        stride = 2 if (i > 0 and j == 0) else 1
        x = BasicBlock(scaled(w, self.width), stride, self.residual,
                       self.ndim)(x, train)
    x = jnp.mean(x, axis=tuple(range(1, 1 + self.ndim)))
    return nn.Dense(self.num_classes, name="head")(x)


class CNN1D(nn.Module):
  """Plain 1-D CNN for MNIST-1D (in the spirit of Greydanus 2020's
  baseline): ``depth`` conv-ReLU layers of kernel 5, stride 2 on the first
  three, flattened into the head."""
  num_classes: int
  width: float = 1.0
  depth: int = 3

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    for i in range(self.depth):
      x = ConvBN(scaled(32, self.width), (5,), strides=2 if i < 3 else 1,
                 norm=False)(x, train)
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes, name="head")(x)
