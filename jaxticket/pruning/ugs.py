"""The pruning step of UGS, the unified GNN sparsification of Chen et al.
(ICML 2021, "A unified lottery ticket hypothesis for graph neural
networks", Alg. 1; code: VITA-Group/Unified-LTH-GNN), and its random
baseline (their ``main_pruning_random.py``). For ONE replica, pure and
vmappable.

After a round of training with soft masks (``edges`` and ``kernel_mask``
leaves, :mod:`jaxticket.models.soft_mask`), UGS prunes the
``edge_fraction`` of the *remaining* edges with the smallest |edge mask|
and the ``weight_fraction`` of the remaining weights with the smallest
|weight mask|, ranked over all layers together (one threshold, as
``get_final_mask_epoch``). Their code scores each *directed* entry of a
dense N x N adjacency mask, so its GCN edge mask need not stay symmetric;
here each undirected edge is one entry (used in both directions), so the
mask is symmetric by construction and the fraction is of undirected edges
(as their ``prune_adj`` helper counts them). Counts are
``round(fraction * alive)`` (:mod:`jaxticket.pruning.allocators`; their
threshold index is ``int(fraction * alive)``), ties broken by index.

Random pruning removes the same fractions at random: edges as one group,
each weight layer on its own (their random baseline draws per layer).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.core.masks import path_str
from jaxticket.pruning.allocators import prune_groups
from jaxticket.pruning.scorers import ScoreContext
from jaxticket.pruning.scorers.random import random as random_scores

PyTree = Any

EDGE_LEAF = "edges"
MASK_LEAF = "kernel_mask"  # models.soft_mask.MASK_LEAF


def _last(path: tuple) -> str:
  return path_str(path).rsplit("/", 1)[-1]


def groups(mask: PyTree, per_layer: bool = False) -> PyTree:
  """Group name per prunable leaf: ``edges`` for the edge leaf, and
  ``weights`` for every kernel (``layer_i`` each with ``per_layer``)."""
  count = iter(range(1 << 30))
  return jax.tree_util.tree_map_with_path(
      lambda p, m: None if m is None else (
          "edges" if _last(p) == EDGE_LEAF else
          (f"layer_{next(count)}" if per_layer else "weights")),
      mask, is_leaf=lambda x: x is None)


def soft_mask_scores(params: PyTree, mask: PyTree) -> PyTree:
  """|soft mask| per prunable leaf: the edge leaf's own |value|, a
  kernel's sibling ``kernel_mask``."""
  def score(path, m):
    if m is None:
      return None
    node = params
    for k in path[:-1]:
      node = node[k.key]
    leaf = path[-1].key
    return jnp.abs(node[leaf] if leaf == EDGE_LEAF else node[MASK_LEAF])
  return jax.tree_util.tree_map_with_path(score, mask,
                                          is_leaf=lambda x: x is None)


def fractions(grouping: PyTree, edge_fraction: jax.Array,
              weight_fraction: jax.Array) -> dict[str, jax.Array]:
  names = {g for g in jax.tree.leaves(grouping) if g is not None}
  return {g: edge_fraction if g == "edges" else weight_fraction
          for g in names}


def prune(params: PyTree, mask: PyTree, edge_fraction: jax.Array,
          weight_fraction: jax.Array) -> PyTree:
  """UGS: the new mask of the soft-masked model's ``params`` (which hold
  ``edges`` and ``kernel_mask`` leaves) from its current ``mask``."""
  grouping = groups(mask)
  return prune_groups(soft_mask_scores(params, mask), mask, grouping,
                      fractions(grouping, edge_fraction, weight_fraction))


def prune_random(key: jax.Array, mask: PyTree, edge_fraction: jax.Array,
                 weight_fraction: jax.Array) -> PyTree:
  """Random pruning at UGS's fractions: edges as one group, weights per
  layer."""
  grouping = groups(mask, per_layer=True)
  scores = random_scores(ScoreContext(params=None, mask=mask, key=key))
  return prune_groups(scores, mask, grouping,
                      fractions(grouping, edge_fraction, weight_fraction))


__all__ = ["prune", "prune_random", "soft_mask_scores", "groups",
           "fractions", "EDGE_LEAF", "MASK_LEAF"]
