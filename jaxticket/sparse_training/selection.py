"""What every mask updater shares: exact top-k selection, drop-and-grow of
one layer, schedules, and access to the prunable leaves.

All functions are pure, written for ONE replica and traceable (counts may be
traced, e.g. a drop fraction that follows a schedule). Selections are exact:
``keep_top(score, k)`` keeps exactly ``k`` entries, ties broken by the lower
flattened index, so the number of active weights of a sparse-to-sparse
update is exactly conserved (the reference implementations add a little
noise to the drop scores instead; we stay deterministic).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxticket.core import masks as masks_lib

PyTree = Any
_is_none = lambda x: x is None
NEG = -jnp.inf


def keep_top(score: jax.Array, k: jax.Array | int) -> jax.Array:
  """Bool array shaped like ``score``: its ``k`` largest entries (ties: the
  lower flattened index first). ``k`` may be traced; it is clipped to
  [0, size]. NaN scores are not supported. Exact and sort-free
  (:func:`jaxticket.core.masks.keep_largest`, 32 passes of
  compare-and-count)."""
  k = jnp.clip(jnp.asarray(k, jnp.int32), 0, score.size)
  return masks_lib.keep_largest(score.ravel(), None, k,
                                keep_ties="first").reshape(score.shape)


def drop_and_grow(mask: jax.Array, weights: jax.Array,
                  grow_score: jax.Array, n_drop: jax.Array) -> jax.Array:
  """One layer's new mask: drop the ``n_drop`` active weights of smallest
  ``|weights|``, then grow ``n_drop`` connections where ``grow_score`` is
  largest among those not kept (the just-dropped ones included, as in
  RigL's and GraNet's code). The active count is unchanged.

  A dropped-and-regrown connection keeps its weight; a connection that was
  inactive starts at zero (the training step masks it first).
  """
  n_active = jnp.sum(mask, dtype=jnp.int32)
  n_drop = jnp.clip(jnp.asarray(n_drop, jnp.int32), 0, n_active)
  kept = keep_top(jnp.where(mask, jnp.abs(weights), NEG), n_active - n_drop)
  grown = keep_top(jnp.where(kept, NEG, grow_score.astype(jnp.float32)),
                   n_drop)
  return kept | grown


def completed(step: jax.Array) -> jax.Array:
  """Optimizer steps completed after step ``step`` (0-based): the update
  after step ``step`` acts at t = step + 1, as the reference code counts
  (TF's global step after ``apply_gradients``; GraNet's ``self.steps``)."""
  return jnp.asarray(step, jnp.int32) + 1


def on_tick(t: jax.Array, every: int, start: int, end: int) -> jax.Array:
  """Whether t is an update tick: a multiple of ``every`` in [start, end]."""
  return (t % every == 0) & (t >= start) & (t <= end)


def cosine(t: jax.Array, horizon: int, initial: float,
           final: float = 0.0) -> jax.Array:
  """``final + (initial - final)/2 * (1 + cos(pi * min(t, horizon) /
  horizon))``: RigL's drop fraction (Evci et al. 2020, Eq. 1, with
  ``final = 0``) and GraNet's death rate (torch's CosineAnnealingLR with
  ``eta_min = final``)."""
  x = jnp.minimum(jnp.asarray(t, jnp.float32), horizon) / max(horizon, 1)
  return final + (initial - final) * 0.5 * (1.0 + jnp.cos(math.pi * x))


def cubic_count(t: jax.Array, start: int, end: int, initial: jax.Array,
                final: jax.Array) -> jax.Array:
  """Kept count of the gradual magnitude pruning schedule (Zhu & Gupta 2017,
  Eq. 1, in counts): ``final + (initial - final) * (1 - p)^3`` rounded,
  p = (t - start) / (end - start) clipped to [0, 1]. Exactly ``initial``
  at p = 0 and ``final`` at p = 1."""
  p = jnp.clip((jnp.asarray(t, jnp.float32) - start) / max(end - start, 1),
               0.0, 1.0)
  initial = jnp.asarray(initial, jnp.float32)
  final = jnp.asarray(final, jnp.float32)
  return jnp.round(final + (initial - final) * (1.0 - p) ** 3).astype(
      jnp.int32)


def prunable(mask: PyTree, *trees: PyTree) -> tuple[list, list[list]]:
  """(mask leaves, [leaves of each tree]) of the prunable leaves, in tree
  order; ``trees`` have the mask's structure (None leaves allowed)."""
  flat = jax.tree.flatten(mask, is_leaf=_is_none)[0]
  idx = [i for i, m in enumerate(flat) if m is not None]
  others = [jax.tree.flatten(t, is_leaf=_is_none)[0] for t in trees]
  return [flat[i] for i in idx], [[o[i] for i in idx] for o in others]


def replace_prunable(mask: PyTree, new: list) -> PyTree:
  """``mask`` with its prunable leaves replaced by ``new`` (tree order)."""
  flat, treedef = jax.tree.flatten(mask, is_leaf=_is_none)
  it = iter(new)
  return jax.tree.unflatten(treedef, [None if m is None else next(it)
                                      for m in flat])


def layer_counts(mask: PyTree) -> jax.Array:
  """Active weights per prunable leaf, int32 [num_layers] (tree order)."""
  return jnp.stack([jnp.sum(m, dtype=jnp.int32) for m in prunable(mask)[0]])


def masked_norm(grads: PyTree, mask: PyTree) -> jax.Array:
  """L2 norm of the gradient that reaches the weights under ``mask``: all
  trained leaves, prunable ones masked (Evci et al. 2022's gradient norm).
  None leaves of ``grads`` (frozen parameters) are skipped."""
  total = jnp.zeros((), jnp.float32)
  for g, m in zip(jax.tree.flatten(grads, is_leaf=_is_none)[0],
                  jax.tree.flatten(mask, is_leaf=_is_none)[0]):
    if g is None:
      continue
    g = g.astype(jnp.float32)
    if m is not None:
      g = jnp.where(m, g, 0.0)
    total = total + jnp.sum(g * g)
  return jnp.sqrt(total)


def check_schedule(name: str, update_every: int, **fractions: float) -> None:
  """ValueError naming the parameter for an impossible schedule."""
  if int(update_every) < 1:
    raise ValueError(f"{name}: update_every={update_every} must be >= 1 "
                     "(optimizer steps between mask updates).")
  for key, value in fractions.items():
    if not 0.0 <= value < 1.0:
      raise ValueError(f"{name}: {key}={value} must be in [0, 1).")


__all__ = ["keep_top", "drop_and_grow",
           "completed", "on_tick", "cosine",
           "cubic_count", "prunable", "replace_prunable", "layer_counts",
           "masked_norm", "check_schedule"]
