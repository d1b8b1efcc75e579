"""Random scores: random pruning, the classic control (and, with per-layer
counts, Su et al.'s random tickets)."""

from __future__ import annotations

import jax

from jaxticket.pruning.scorers.context import ScoreContext


def random(ctx: ScoreContext):
  """Independent U[0, 1) scores from ``ctx.key``, one key per leaf."""
  leaves, treedef = jax.tree.flatten(ctx.mask, is_leaf=lambda x: x is None)
  keys = iter(jax.random.split(ctx.key, max(len(leaves), 1)))
  scored = [None if m is None else jax.random.uniform(next(keys), m.shape)
            for m in leaves]
  return jax.tree.unflatten(treedef, scored)
