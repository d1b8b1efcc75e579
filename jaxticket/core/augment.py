"""JAX-side augmentation: random crop with zero padding and horizontal flip
(the standard CIFAR recipe of He et al. 2016). Pure functions of a key, so
they jit and vmap with the training step."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_flip(key: jax.Array, images: jax.Array, pad: int = 4
                     ) -> jax.Array:
  """Per-example random ``pad``-pixel translation crop and left-right flip.

  Args:
    key: PRNG key.
    images: (B, H, W, C).
  Returns:
    Augmented images, same shape and dtype.
  """
  b, h, w, _ = images.shape
  k_crop, k_flip = jax.random.split(key)
  offsets = jax.random.randint(k_crop, (b, 2), 0, 2 * pad + 1)
  flips = jax.random.bernoulli(k_flip, 0.5, (b,))
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

  def one(img, off, flip):
    crop = jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))
    return jnp.where(flip, crop[:, ::-1], crop)

  return jax.vmap(one)(padded, offsets, flips)
