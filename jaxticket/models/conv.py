"""A convolution layer with two lowerings and the parameters of ``nn.Conv``.

XLA:CPU runs convolutions inside a ``lax.scan``/``while`` loop (our training
loop) 8-50x slower than the same convolution outside one (measured here: a
2-D conv forward+backward 524 ms in a scan vs 20 ms outside). Written as
shifted slices + one matmul ("im2col"), the same layer runs 9 ms in the scan.
``impl='patches'`` does that; ``impl='lax'`` calls ``lax.conv_general_dilated``
(cuDNN on GPU); ``auto`` picks patches on CPU. Both give the same numbers up
to float rounding and use the same parameters (``kernel`` of shape
(*kernel_size, in_features // groups, features), ``bias``), so checkpoints
move between them.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLS = ("auto", "patches", "lax")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow/XLA 'SAME' padding for one spatial dim."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv_patches(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                 groups: int = 1) -> jax.Array:
  """SAME convolution as slices + matmul. ``groups`` must be 1 or equal to
  the input channels (depthwise)."""
  nd = x.ndim - 2
  ks = kernel.shape[:nd]
  pads = [same_padding(x.shape[1 + d], ks[d], strides[d]) for d in range(nd)]
  outs = [-(-x.shape[1 + d] // strides[d]) for d in range(nd)]
  xp = jnp.pad(x, [(0, 0)] + pads + [(0, 0)])
  cols = []
  for offs in itertools.product(*[range(k) for k in ks]):
    idx = tuple(slice(o, o + (outs[d] - 1) * strides[d] + 1, strides[d])
                for d, o in enumerate(offs))
    cols.append(xp[(slice(None),) + idx + (slice(None),)])
  if groups == 1:
    patches = jnp.concatenate(cols, axis=-1)
    return patches @ kernel.reshape(-1, kernel.shape[-1])
  if groups != x.shape[-1] or kernel.shape[-1] != groups:
    raise NotImplementedError("patches conv supports groups=1 or depthwise")
  taps = kernel.reshape(-1, kernel.shape[-1])  # (prod(ks), C)
  return sum(c * taps[i] for i, c in enumerate(cols))


class Conv(nn.Module):
  """SAME-padded convolution with ``nn.Conv``'s parameters (see module doc)."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | int = 1
  use_bias: bool = True
  feature_group_count: int = 1
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    nd = len(self.kernel_size)
    strides = ((self.strides,) * nd if isinstance(self.strides, int)
               else tuple(self.strides))
    cin = x.shape[-1]
    kernel = self.param(
        "kernel", self.kernel_init,
        (*self.kernel_size, cin // self.feature_group_count, self.features))
    impl = self.impl
    if impl == "auto":
      impl = "patches" if jax.default_backend() == "cpu" else "lax"
    if impl == "patches":
      y = conv_patches(x, kernel, strides, self.feature_group_count)
    else:
      spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[nd]
      y = jax.lax.conv_general_dilated(
          x, kernel, strides, "SAME", dimension_numbers=spec,
          feature_group_count=self.feature_group_count)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y
