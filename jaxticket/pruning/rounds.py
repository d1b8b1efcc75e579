"""Pruning at initialization to target counts, in one round or many.

A PaI method = a scorer + an allocation (target kept counts per group of
leaves: one group for *global* ranking, one per layer for a layer-density
rule) + a number of rounds. Round k of n (k = 1..n) re-scores the masked
network and keeps, in every group g of N_g weights with final count C_g,

    round(N_g * (C_g / N_g) ** (k / n))        (exactly C_g at k = n)

weights: the exponential schedule d^(k/n) of SynFlow (Tanaka et al. 2020,
Sec. 6 and Synaptic-Flow's ``prune_loop``; n = 100 in the paper) and of
iterative SNIP (de Jorge et al., ICLR 2021, "Progressive skeletonization").
One round is the one-shot method. The rounds are ONE ``lax.fori_loop``
(one compiled program, no Python loop), written for one replica and
vmappable: counts and keys may differ per replica.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.pruning import allocators
from jaxticket.pruning.scorers import ScoreContext, Scorer

PyTree = Any


def group_sizes(mask: PyTree, groups: PyTree) -> dict[str, int]:
  """Number of prunable weights per group (static)."""
  sizes: dict[str, int] = {}
  for m, g in zip(jax.tree.leaves(mask), jax.tree.leaves(groups)):
    sizes[g] = sizes.get(g, 0) + int(np.prod(m.shape))
  return sizes


def scheduled_counts(final: Mapping[str, jax.Array], sizes: Mapping[str, int],
                     k: jax.Array, rounds: int) -> dict[str, jax.Array]:
  """Kept count per group after round ``k`` of ``rounds`` (1-based)."""
  out = {}
  for g, n in sizes.items():
    c = jnp.asarray(final[g], jnp.float32)
    frac = jnp.asarray(k, jnp.float32) / rounds
    density = jnp.where(c > 0, c / n, 0.0)
    kept = jnp.floor(n * density ** frac + 0.5)
    out[g] = jnp.where(k >= rounds, c, kept).astype(jnp.int32)
  return out


def prune_in_rounds(scorer: Scorer, ctx: ScoreContext, groups: PyTree,
                    counts: Mapping[str, jax.Array], rounds: int = 1
                    ) -> PyTree:
  """The mask keeping ``counts[g]`` weights of each group after ``rounds``
  rounds of scoring the masked network (``ctx.mask`` is where it starts;
  pruned weights stay pruned). Round k scores with ``fold_in(key, k)``."""
  if rounds < 1:
    raise ValueError(f"rounds={rounds}: need at least one round.")
  sizes = group_sizes(ctx.mask, groups)

  def one_round(k: jax.Array, mask: PyTree) -> PyTree:
    key = None if ctx.key is None else jax.random.fold_in(ctx.key, k)
    scores = scorer(ctx.replace(mask=mask, key=key))
    return allocators.keep_top(scores, mask, groups,
                               scheduled_counts(counts, sizes, k + 1, rounds))

  if rounds == 1:
    return one_round(jnp.int32(0), ctx.mask)
  return jax.lax.fori_loop(0, rounds, one_round, ctx.mask)


def global_counts(mask: PyTree, density: jax.Array) -> dict[str, jax.Array]:
  """``{"body": round(density * total)}`` for :func:`global_groups`."""
  total = sum(int(np.prod(m.shape)) for m in jax.tree.leaves(mask))
  return {"body": jnp.floor(jnp.asarray(density, jnp.float32) * total + 0.5
                            ).astype(jnp.int32)}


def global_groups(mask: PyTree) -> PyTree:
  """Every prunable leaf in one group: scores ranked across layers."""
  return allocators.group_leaves(mask, "global")


def layer_groups(mask: PyTree) -> PyTree:
  """One group per prunable leaf (``layer_<i>``, i its tree position)."""
  return allocators.group_leaves(mask, "layerwise")


def layer_counts_table(groups: PyTree, counts: jax.Array
                       ) -> dict[str, jax.Array]:
  """``{group: counts[j]}`` for :func:`layer_groups`, j the prunable
  leaf's index in tree order (``counts`` may be traced)."""
  names = [g for g in jax.tree.leaves(groups)]
  return {g: counts[j] for j, g in enumerate(names)}


__all__ = ["prune_in_rounds", "scheduled_counts", "group_sizes",
           "global_counts", "global_groups", "layer_groups",
           "layer_counts_table"]
