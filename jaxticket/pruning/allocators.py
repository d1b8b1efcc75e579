"""Allocators: turn a score pytree and a pruning fraction into a new mask.

Weights are ranked within *groups* of prunable leaves: one group for all
leaves (``global``), one group per leaf (``layerwise``), or any partition (the
output layer pruned at its own rate, as Frankle & Carbin 2019 do). In each
group the ``round(fraction * alive)`` lowest-scoring *alive* weights are
pruned: the fraction is of the remaining weights, as in IMP.

Ties are broken deterministically: among equal scores the weight that comes
first in the group's flattened order (leaves in tree order, entries in
row-major order) is pruned first. Everything is traceable, so the fraction can
differ per replica under ``jax.vmap``.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import check_choice

PyTree = Any


def _prune_group(scores: Sequence[jax.Array], alive: Sequence[jax.Array],
                 fraction: jax.Array) -> list[jax.Array]:
  """Prune ``fraction`` of the alive weights of one group of leaves."""
  n_alive = sum(jnp.sum(a, dtype=jnp.int32) for a in alive)
  n_prune = jnp.floor(fraction * n_alive + 0.5).astype(jnp.int32)
  return _drop_lowest(scores, alive, n_prune)


def _drop_lowest(scores: Sequence[jax.Array], alive: Sequence[jax.Array],
                 n_prune: jax.Array) -> list[jax.Array]:
  """Prune the ``n_prune`` lowest-scoring alive weights of one group."""
  flat_scores = jnp.concatenate([s.ravel().astype(jnp.float32) for s in scores])
  flat_alive = jnp.concatenate([a.ravel() for a in alive])
  total = flat_alive.shape[0]
  n_alive = jnp.sum(flat_alive, dtype=jnp.int32)
  n_dead = total - n_alive
  # Sort dead weights first, then alive ones by score; lexsort is stable, so
  # equal keys keep index order. The primary key is the last one.
  order = jnp.lexsort((flat_scores, flat_alive))
  rank = jnp.zeros(total, jnp.int32).at[order].set(
      jnp.arange(total, dtype=jnp.int32))
  keep = rank >= n_dead + n_prune
  out, start = [], 0
  for a in alive:
    out.append(keep[start:start + a.size].reshape(a.shape))
    start += a.size
  return out


def prune_groups(scores: PyTree, mask: PyTree, groups: PyTree,
                 fractions: dict[str, jax.Array]) -> PyTree:
  """Prune each group of leaves by its own fraction of remaining weights.

  Args:
    scores: score pytree (arrays on prunable leaves, None elsewhere).
    mask: current mask; pruned weights stay pruned.
    groups: pytree like ``mask`` whose prunable leaves hold a group name.
    fractions: ``{group name: fraction of the alive weights to prune}``.
  Returns:
    The new mask, a subset of ``mask``.
  """
  is_none = lambda x: x is None
  m_leaves, treedef = jax.tree.flatten(mask, is_leaf=is_none)
  s_leaves = treedef.flatten_up_to(scores)
  g_leaves = treedef.flatten_up_to(groups)
  new = list(m_leaves)
  for name in dict.fromkeys(g for g, m in zip(g_leaves, m_leaves)
                            if m is not None):
    idx = [i for i, (g, m) in enumerate(zip(g_leaves, m_leaves))
           if m is not None and g == name]
    kept = _prune_group([s_leaves[i] for i in idx], [m_leaves[i] for i in idx],
                        jnp.asarray(fractions[name], jnp.float32))
    for i, k in zip(idx, kept):
      new[i] = k
  return jax.tree.unflatten(treedef, new)


def keep_top(scores: PyTree, mask: PyTree, groups: PyTree,
             counts: dict[str, jax.Array]) -> PyTree:
  """Keep exactly ``counts[g]`` alive weights in each group ``g`` (the
  highest-scoring ones; all alive ones if fewer): the allocation by target
  counts that pruning at initialization uses (Tanaka et al. 2020 note that
  a threshold ``score <= t`` can remove too many weights at ties; exact
  counts cannot). ``counts`` may be traced, e.g. per replica under vmap.
  """
  is_none = lambda x: x is None
  m_leaves, treedef = jax.tree.flatten(mask, is_leaf=is_none)
  s_leaves = treedef.flatten_up_to(scores)
  g_leaves = treedef.flatten_up_to(groups)
  new = list(m_leaves)
  for name in dict.fromkeys(g for g, m in zip(g_leaves, m_leaves)
                            if m is not None):
    idx = [i for i, (g, m) in enumerate(zip(g_leaves, m_leaves))
           if m is not None and g == name]
    alive = [m_leaves[i] for i in idx]
    n_alive = sum(jnp.sum(a, dtype=jnp.int32) for a in alive)
    n_keep = jnp.clip(jnp.asarray(counts[name], jnp.int32), 0, n_alive)
    kept = _keep_highest([s_leaves[i] for i in idx], alive, n_keep)
    for i, k in zip(idx, kept):
      new[i] = k
  return jax.tree.unflatten(treedef, new)


def _keep_highest(scores: Sequence[jax.Array], alive: Sequence[jax.Array],
                  n_keep: jax.Array) -> list[jax.Array]:
  """Keep the ``n_keep`` highest-scoring alive weights of one group, ties
  at the threshold resolved as :func:`_drop_lowest` does (the lower index is
  pruned first), by :func:`jaxticket.core.masks.keep_largest` (bisection,
  no sort)."""
  keep = masks_lib.keep_largest(
      jnp.concatenate([s.ravel() for s in scores]),
      jnp.concatenate([a.ravel() for a in alive]), n_keep)
  out, start = [], 0
  for a in alive:
    out.append(keep[start:start + a.size].reshape(a.shape))
    start += a.size
  return out


def group_leaves(mask: PyTree, strategy: str,
                 special: PyTree | None = None) -> PyTree:
  """Group names per prunable leaf for a strategy.

  ``global``: every leaf in group ``"body"``; ``layerwise``: each leaf its own
  group (named by its position). Leaves flagged True in ``special`` (e.g. the
  output layer) form group ``"special"`` under ``global`` and keep their own
  groups under ``layerwise``; :func:`fraction_table` gives them their own rate.
  """
  check_choice("imp.strategy", strategy, STRATEGIES, "pruning strategy")
  is_none = lambda x: x is None
  m_leaves, treedef = jax.tree.flatten(mask, is_leaf=is_none)
  sp = (treedef.flatten_up_to(special) if special is not None
        else [False] * len(m_leaves))
  names = []
  for i, (m, s) in enumerate(zip(m_leaves, sp)):
    if m is None:
      names.append(None)
    elif strategy == "layerwise":
      names.append(f"{'special' if s else 'layer'}_{i}")
    else:
      names.append("special" if s else "body")
  return jax.tree.unflatten(treedef, names)


def fraction_table(groups: PyTree, fraction: jax.Array,
                   special_fraction: jax.Array | None = None
                   ) -> dict[str, jax.Array]:
  """``{group: fraction}``: ``special*`` groups get ``special_fraction``."""
  names = set(g for g in jax.tree.leaves(groups) if g is not None)
  sf = fraction if special_fraction is None else special_fraction
  return {g: (sf if g.startswith("special") else fraction) for g in names}


STRATEGIES = ("global", "layerwise")


def fraction_for_density(current_density: float, target_density: float) -> float:
  """Fraction of remaining weights to prune to go from one density to another."""
  if not 0 < target_density <= current_density:
    raise ValueError(f"Cannot prune from density {current_density} to "
                     f"{target_density}: the target must be in (0, current].")
  return float(1.0 - np.float64(target_density) / current_density)
