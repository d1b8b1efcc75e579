"""Image CNNs: Conv-2/4/6 (Frankle & Carbin 2019), VGG (Simonyan & Zisserman
2015, CIFAR variant with BatchNorm and global pooling, as in OpenLTH and Ma et
al. 2021) and MobileNet-v1 (Howard et al. 2017, CIFAR variant)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxticket.models.layers import ConvBN, he_normal, scaled


class ConvNet(nn.Module):
  """Conv-2/4/6: pairs of 3x3 convs (64, 128, 256) with max-pool, then FC
  256-256 and the head. No BatchNorm, as in Frankle & Carbin (2019)."""
  num_pairs: int
  num_classes: int
  width: float = 1.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    for i in range(self.num_pairs):
      c = scaled(64 * 2**i, self.width)
      x = ConvBN(c, (3, 3), norm=False)(x, train)
      x = ConvBN(c, (3, 3), norm=False)(x, train)
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape((x.shape[0], -1))
    for _ in range(2):
      x = nn.relu(nn.Dense(scaled(256, self.width), kernel_init=he_normal)(x))
    return nn.Dense(self.num_classes, name="head")(x)


VGG_PLANS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512,
         512, "M", 512, 512, 512, 512),
}


class VGG(nn.Module):
  """CIFAR VGG: conv3x3-BN-ReLU stacks, max-pools, global average, head."""
  plan: Sequence[int | str]
  num_classes: int
  width: float = 1.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    for item in self.plan:
      if item == "M":
        x = nn.max_pool(x, (2, 2), (2, 2))
      else:
        x = ConvBN(scaled(int(item), self.width), (3, 3))(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="head")(x)


MOBILENET_PLAN = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                  (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2),
                  (1024, 1))


class MobileNetV1(nn.Module):
  """MobileNet-v1 for 32x32 inputs: a 3x3 stem at stride 1, then depthwise
  separable blocks (depthwise 3x3 + pointwise 1x1, each with BN and ReLU)."""
  num_classes: int
  width: float = 1.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = ConvBN(scaled(32, self.width), (3, 3))(x, train)
    for out, stride in MOBILENET_PLAN:
      cin = x.shape[-1]
      x = ConvBN(cin, (3, 3), strides=stride, groups=cin)(x, train)
      x = ConvBN(scaled(out, self.width), (1, 1))(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="head")(x)
