"""Random masks for the controls of Su et al. (NeurIPS 2020) and Ma et al.
(NeurIPS 2021): layer-wise shuffles, random masks with given per-layer
counts, Su et al.'s "smart ratio" counts (random tickets) and hybrid
tickets (smart-ratio counts, largest |w_0| within each layer).

All functions take one replica's mask and are vmappable; counts are exact.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.pruning import allocators, ratios

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
                       variant: str = "resnet",
                       linear_keep_ratio: float = ratios.LINEAR_KEEP_RATIO,
                       last_linear: bool = True) -> list[int]:
  """Per-layer kept counts from Su et al.'s smart ratios, exactly as their
  code computes them: :func:`jaxticket.pruning.ratios.smart_ratio_counts`
  (``sizes`` in forward order, the last one the linear classifier when
  ``last_linear``)."""
  return ratios.smart_ratio_counts(sizes, density, variant,
                                   linear_keep_ratio, last_linear)


def smart_ratio_counts_for(paths: list[str], sizes: list[int],
                           density: float, model_name: str,
                           output_layer: str) -> list[int]:
  """:func:`smart_ratio_counts` for a model's prunable leaves given in
  forward order: the VGG variant unless the model is a ResNet (Su et al.'s
  ``args.arch != 'resnet'``), the fixed 30% for the last leaf when it is
  the output layer (``output_layer``, a regex over leaf paths)."""
  return ratios.smart_ratio_counts(
      sizes, density, ratios.smart_ratio_variant(model_name),
      last_linear=bool(re.search(output_layer, paths[-1])))


def hybrid(params: PyTree, mask_like: PyTree, counts: list[jax.Array]
           ) -> PyTree:
  """Su et al.'s hybrid ticket: in the i-th prunable leaf keep the
  ``counts[i]`` weights of largest |w_0| (their ``--hybrid``: smart-ratio
  counts, magnitude within each layer; ties: lower index pruned first)."""
  full = jax.tree.map(lambda m: None if m is None else jnp.ones_like(m, bool),
                      mask_like, is_leaf=_is_none)
  groups = allocators.group_leaves(full, "layerwise")
  names = [g for g in jax.tree.leaves(groups)]
  scores = jax.tree.map(lambda m, p: None if m is None else jnp.abs(p),
                        full, params, is_leaf=_is_none)
  return allocators.keep_top(scores, full, groups,
                             {g: c for g, c in zip(names, counts)})
