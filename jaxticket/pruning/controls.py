"""Random masks for the controls of Su et al. (NeurIPS 2020) and Ma et al.
(NeurIPS 2021): layer-wise shuffles, random masks with given per-layer
counts, and data-independent "smart ratio" layer densities.

All functions take one replica's mask and are vmappable; counts are exact.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
_is_none = lambda x: x is None


def layer_counts(mask: PyTree) -> list[jax.Array]:
  """Kept weights per prunable leaf, in tree order."""
  return [jnp.sum(m, dtype=jnp.int32) for m in jax.tree.leaves(mask)]


def _per_leaf(fn, key: jax.Array, mask: PyTree, *per_leaf_args) -> PyTree:
  leaves, treedef = jax.tree.flatten(mask, is_leaf=_is_none)
  prunable = [i for i, m in enumerate(leaves) if m is not None]
  keys = jax.random.split(key, max(len(prunable), 1))
  out = list(leaves)
  for j, i in enumerate(prunable):
    out[i] = fn(keys[j], leaves[i], *(a[j] for a in per_leaf_args))
  return jax.tree.unflatten(treedef, out)


def shuffle_within_layers(key: jax.Array, mask: PyTree) -> PyTree:
  """Permute each layer's mask entries at random (Su et al.'s layer-wise
  rearrangement): every layer keeps exactly its number of kept weights."""
  def one(k, m):
    return jax.random.permutation(k, m.ravel()).reshape(m.shape)
  return _per_leaf(one, key, mask)


def random_with_counts(key: jax.Array, mask_like: PyTree,
                       counts: list[jax.Array]) -> PyTree:
  """Independent uniformly random masks keeping ``counts[i]`` weights in the
  i-th prunable leaf (traceable counts)."""
  def one(k, m, c):
    scores = jax.random.uniform(k, (m.size,))
    rank = jnp.zeros(m.size, jnp.int32).at[jnp.argsort(-scores)].set(
        jnp.arange(m.size, dtype=jnp.int32))
    return (rank < c).reshape(m.shape)
  return _per_leaf(one, key, mask_like, counts)


def smart_ratio_counts(sizes: list[int], density: float,
                       output_ratio: float | None = 0.3) -> list[int]:
  """Per-layer kept counts from Su et al.'s smart ratios.

  Layer l of L (1 = input side) gets a keep ratio proportional to
  (L - l + 1)^2 + (L - l + 1): early layers are kept denser. The scale is set
  so the total kept count hits ``density`` of all weights; ratios above 1 are
  clipped and the rest re-scaled (water-filling). Su et al. pin the final
  linear layer at 30%; we keep it at ``max(output_ratio, density)`` so the
  rule also works at low sparsity (None: no special last layer).
  """
  sizes = np.asarray(sizes, np.float64)
  depth = len(sizes)
  q = np.array([(depth - l + 1) ** 2 + (depth - l + 1)
                for l in range(1, depth + 1)], np.float64)
  target = density * sizes.sum()
  if output_ratio is not None and depth > 1:
    last = int(np.floor(max(output_ratio, density) * sizes[-1]))
    last = min(last, int(round(target)))
    head = smart_ratio_counts(list(sizes[:-1].astype(int)),
                              (round(target) - last) / sizes[:-1].sum(),
                              output_ratio=None)
    return head + [last]
  lo, hi = 0.0, 1.0 / q.min()
  for _ in range(100):  # bisection on the scale: kept(scale) is monotone
    mid = (lo + hi) / 2
    if (np.minimum(1.0, mid * q) * sizes).sum() < target:
      lo = mid
    else:
      hi = mid
  counts = np.floor(np.minimum(1.0, hi * q) * sizes).astype(int)
  # Hand out the few weights lost to flooring, densest-ratio layers first.
  short = int(round(target)) - counts.sum()
  for i in np.argsort(-q):
    if short <= 0:
      break
    add = min(short, int(sizes[i]) - counts[i])
    counts[i] += add
    short -= add
  return [int(c) for c in counts]
