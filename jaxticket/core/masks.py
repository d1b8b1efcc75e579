"""Masks: pytrees shaped like the params, applied by pure functions.

A mask has exactly the tree structure of the params it belongs to. Prunable
leaves hold boolean arrays of the leaf's shape (True = weight kept); every other
leaf (biases, norm scales, anything the prunability rule excludes) holds
``None``. All functions here are pure and jit/vmap safe: under ``jax.vmap`` a
stacked mask (leading replica axis) is handled one replica at a time.

Which leaves are prunable is decided by *path* (a regex over the '/'-joined
parameter path, e.g. ``Dense_0/kernel``), never by ``ndim``: stacked params gain
an axis, so shape rules would mistake a stacked bias for a kernel.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

#: Default prunability rule: kernels of Dense and Conv layers.
DEFAULT_PRUNABLE = r"(^|/)kernel$"
#: Every model in :mod:`jaxticket.models` names its classifier ``head``.
DEFAULT_OUTPUT_LAYER = r"(^|/)head/kernel$"


def path_str(path: tuple) -> str:
  """'/'-joined name of a tree path, e.g. ``Dense_0/kernel``."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def leaf_paths(tree: PyTree) -> PyTree:
  """A pytree like ``tree`` whose leaves are their own path strings."""
  return jax.tree_util.tree_map_with_path(lambda p, _: path_str(p), tree)


def creation_order(variables: dict, prefix: str = "") -> list[str]:
  """Leaf paths in the order the dict was built (a fresh, un-jitted Flax
  ``init`` builds params in forward order; ``jax.tree`` sorts keys, so
  'BasicBlock_10' would come before 'BasicBlock_2' and the stem last)."""
  out = []
  for key, value in variables.items():
    path = f"{prefix}{key}"
    if isinstance(value, dict):
      out += creation_order(value, path + "/")
    else:
      out.append(path)
  return out


def select(params: PyTree, pattern: str) -> PyTree:
  """Pytree of Python bools: does the leaf's path match ``pattern``?"""
  regex = re.compile(pattern)
  return jax.tree.map(lambda p: bool(regex.search(p)), leaf_paths(params))


def ones(params: PyTree, prunable: str = DEFAULT_PRUNABLE) -> PyTree:
  """The dense mask: True on every prunable leaf, None elsewhere."""
  regex = re.compile(prunable)

  def leaf(path, p):
    return jnp.ones(jnp.shape(p), bool) if regex.search(path_str(path)) else None

  mask = jax.tree_util.tree_map_with_path(leaf, params)
  if not prunable_leaves(mask):
    raise ValueError(
        f"The prunability rule {prunable!r} matches no parameter. Parameter "
        f"paths are: {sorted(jax.tree.leaves(leaf_paths(params)))}. Set "
        "`masks.prunable` to a regex over these paths.")
  return mask


def map_prunable(fn: Callable, mask: PyTree, *trees: PyTree) -> PyTree:
  """Map ``fn(m, *leaves)`` over prunable leaves; None leaves stay None."""
  return jax.tree.map(
      lambda m, *xs: None if m is None else fn(m, *xs), mask, *trees,
      is_leaf=lambda x: x is None)


def is_prunable(mask: PyTree) -> PyTree:
  """Pytree of Python bools marking the prunable leaves of ``mask``."""
  return jax.tree.map(lambda m: m is not None, mask, is_leaf=lambda x: x is None)


def prunable_leaves(mask: PyTree) -> list:
  """The boolean arrays of the mask, in tree order."""
  return [m for m in jax.tree.leaves(mask)]


def apply(params: PyTree, mask: PyTree) -> PyTree:
  """Zero the pruned entries of ``params``; non-prunable leaves pass
  through, and so do None leaves of ``params`` (frozen parts of a split,
  :mod:`jaxticket.core.parametrization`)."""
  return jax.tree.map(
      lambda p, m: p if m is None or p is None else jnp.where(
          m, p, jnp.zeros_like(p)),
      params, mask, is_leaf=lambda x: x is None)


def count(mask: PyTree) -> tuple[jax.Array, int]:
  """(kept, total) prunable weights. ``kept`` is a traced scalar."""
  leaves = prunable_leaves(mask)
  kept = sum(jnp.sum(m, dtype=jnp.int32) for m in leaves)
  total = sum(int(np.prod(m.shape)) for m in leaves)
  return kept, total


def density(mask: PyTree) -> jax.Array:
  """Fraction of prunable weights kept (1.0 for the dense mask)."""
  kept, total = count(mask)
  return kept / total


def replica_densities(stacked_mask: PyTree) -> np.ndarray:
  """Density of every replica of a stacked mask, as float64 from exact
  integer counts (the same value whatever devices the mask lives on; a
  float32 division on device can differ in the last bit between layouts)."""
  kept = np.asarray(jax.vmap(lambda m: count(m)[0])(stacked_mask))
  total = sum(int(np.prod(m.shape[1:])) for m in prunable_leaves(stacked_mask))
  return kept.astype(np.float64) / total


def per_layer_density(mask: PyTree) -> dict[str, jax.Array]:
  """``{path: fraction kept}`` for every prunable leaf."""
  flat = jax.tree_util.tree_flatten_with_path(
      mask, is_leaf=lambda x: x is None)[0]
  return {path_str(p): jnp.mean(m.astype(jnp.float32))
          for p, m in flat if m is not None}


def sortable_bits(x: jax.Array) -> jax.Array:
  """uint32 keys ordered as the float32 values (-0.0 counted as +0.0, as
  float comparison does)."""
  x = jnp.where(x == 0, jnp.float32(0), x.astype(jnp.float32))
  b = jax.lax.bitcast_convert_type(x, jnp.uint32)
  sign = b >> 31
  return jnp.where(sign == 1, ~b, b | jnp.uint32(0x80000000))


def keep_largest(values: jax.Array, live: jax.Array | None,
                 count: jax.Array, keep_ties: str = "last") -> jax.Array:
  """Bool vector: the ``count`` largest of the ``live`` entries of the flat
  ``values`` (all live if None; all live ones if fewer). Ties at the
  threshold keep the higher flattened index with ``keep_ties="last"`` (the
  lower one is dropped first, as pruning along a stable ascending sort
  would) or the lower one with ``"first"`` (as taking the top of a stable
  descending sort would). No sort: the threshold is found
  by bisection over the 2^32 ordered float32 keys (32 rounds of
  compare-and-count), a fraction of a sort's cost on XLA:CPU inside a
  compiled loop, exact, traceable ``count``."""
  keys = sortable_bits(values)
  live = jnp.ones(keys.shape, bool) if live is None else live
  count = jnp.asarray(count, jnp.int32)
  at_least = lambda t: jnp.sum(live & (keys >= t), dtype=jnp.int32) >= count

  def step(_, bounds):
    lo, hi = bounds  # at_least(lo) holds; the answer lies in [lo, hi]
    mid = lo + (hi - lo) // 2 + 1
    ok = at_least(mid)
    move = lo < hi
    return (jnp.where(move & ok, mid, lo),
            jnp.where(move & ~ok, mid - 1, hi))

  lo, _ = jax.lax.fori_loop(0, 32, step, (jnp.uint32(0),
                                          jnp.uint32(0xFFFFFFFF)))
  above = live & (keys > lo)
  ties = live & (keys == lo)
  need = count - jnp.sum(above, dtype=jnp.int32)
  if keep_ties == "first":
    rank = jnp.cumsum(ties.astype(jnp.int32))
  else:
    rank = jnp.cumsum(ties[::-1].astype(jnp.int32))[::-1]
  return above | (ties & (rank <= need))


def intersect(a: PyTree, b: PyTree) -> PyTree:
  """Elementwise AND of two masks of the same structure."""
  return map_prunable(jnp.logical_and, a, b)
