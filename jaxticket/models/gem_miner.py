"""GEM-MINER (Sreenivasan et al., NeurIPS 2022, "Rare Gems: Finding Lottery
Tickets at Initialization"): a mask learned over FROZEN initial weights.

Every prunable kernel w gets a score p in [0, 1] (initialized U[0, 1]); the
forward pass uses w * [p > 1/2] with the gradient passed straight through
to p; after each optimizer step p is clipped back to [0, 1] (projected
gradient descent); the loss is the task loss + lambda * ||p||^2. Every few
epochs (5 in the paper) the live weights with the smallest p are *frozen
off* for good, at a rate that reaches the target density by the end. The
weights are then trained under the found mask from their initialization
(the "gem" trained afterwards; ``jaxticket pai`` does that with the
recipe every method gets).

Knob in words: the target *density* is the fraction of prunable weights
KEPT. (!) The authors' ``target_sparsity`` is the percentage REMAINING
(``target_sparsity: 0.59`` keeps 0.59% of the weights).

Two pieces behind the platform's interfaces, no fork of the step:

- :class:`GemMinerRule` is a :class:`~jaxticket.models.supermask.MaskRule`
  for :class:`~jaxticket.models.supermask.Supermask`: ``init_scores`` U[0, 1],
  ``masks`` = [p > 1/2] straight-through, ``project`` = clip to [0, 1]
  (handed to ``Parametrization.scores(projection(rule))``, the step applies
  it after every update). The L2 penalty is coupled weight decay on the
  scores: SGD's coupled decay adds ``wd * p`` to the gradient, which is the
  gradient of ``(wd / 2) ||p||^2``, so ``wd = 2 lambda`` is exactly the
  authors' ``lmbda * ||p||^2`` (with their ``wd: 0`` on the scores); the
  parametrization trains only scores, so the decay reaches nothing else.
- :class:`IterativeFreezing` is a :class:`~jaxticket.core.updater.
  MaskUpdater` whose mask covers the ``scores`` leaves (the freeze flag):
  the step masks a frozen score's gradient and holds the score at 0, so its
  weight's forward mask [0 > 1/2] is 0 for good. Freeze k of n (k = 1..n,
  after every ``period`` optimizer steps) keeps, across all scored layers
  ranked together (the code's ``prune_type: BottomK``), the
  ``round(N * d^(k/n))`` live weights with the largest |p| (exactly
  ``round(d N)`` at k = n, the count every ``pai`` method keeps; ties: the
  lower flattened index is frozen first). The target density ``d`` is the
  per-replica frozen leaf ``params["keep"]`` of the Supermask, so densities
  x seeds share one program.

Where we follow the code (ksreenivasan/pruning_is_enough, ``algo:
hc_iter``, ``hc_quantized: True``) and where not:

- freezes: the code freezes after epochs e with ``e % iter_period == 0``,
  e > 0 (0-based, so after 6, 11, ... epochs), ``floor((E - 1) / T)``
  times, each freezing ``ceil(rate * live)`` with ``rate = 1 - (d)^(1/n)``
  and ties at the threshold freezing more; we freeze after every T epochs
  (``period`` steps), the same ``n``, at exact counts, so the final flag
  keeps exactly the target.
- the mask handed to weight training: the flag (the code's
  ``unflag_before_finetune: True``, used for its sparse targets; exact
  density), or with ``rounded`` flag * [p > 1/2] (``unflag: False``; density
  at most the target). See :func:`kernel_masks`.
- frozen weights are the replica's own initialization (the PaI comparison
  trains the weights the mask was found on); the code draws signed Kaiming
  constants (``init: signed_constant``). BatchNorm keeps its initial
  scale/offset during the score phase (the code's ``NonAffineBatchNorm``),
  biases stay frozen.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.core import masks as masks_lib
from jaxticket.models.supermask import Shape, straight_through

PyTree = Any

#: The forward mask is [p > THRESHOLD] (the code's ``quantize_threshold``).
THRESHOLD = 0.5
#: Masks handed to weight training: the freeze flag, or flag * [p > 1/2].
FINALS = ("flag", "rounded")
#: Regex of the leaves :class:`IterativeFreezing`'s mask covers.
SCORES = r"(^|/)scores$"


@dataclasses.dataclass(frozen=True)
class GemMinerRule:
  """Scores p in [0, 1]; mask [p > 1/2], gradient straight through to p."""
  name: str = "gem_miner"
  threshold: float = THRESHOLD

  def score_shape(self, kernel_shape: Shape) -> Shape:
    return tuple(kernel_shape)

  def init_scores(self, key: jax.Array, kernel_shape: Shape) -> jax.Array:
    """U[0, 1] (the code's ``score_init: unif``)."""
    return jax.random.uniform(key, self.score_shape(kernel_shape),
                              jnp.float32, 0.0, 1.0)

  def masks(self, scores: Sequence[jax.Array], keep: jax.Array
            ) -> list[jax.Array]:
    """[p > threshold] exactly forward, identity gradient to p (``keep`` is
    the target density, read by :class:`IterativeFreezing`, not here)."""
    del keep
    return [straight_through(p, p > self.threshold) for p in scores]

  def project(self, scores: jax.Array) -> jax.Array:
    """Back onto [0, 1] after each step."""
    return jnp.clip(scores, 0.0, 1.0)


def freeze_count(total: int, density: jax.Array, k: jax.Array,
                 freezes: int) -> jax.Array:
  """Live weights after freeze ``k`` of ``freezes`` (1-based):
  ``round(N * (C / N)^(k / n))`` with ``C = round(d N)`` the final count,
  exactly ``C`` at ``k >= n`` (the schedule of
  :func:`jaxticket.pruning.rounds.scheduled_counts`)."""
  c = jnp.floor(jnp.asarray(density, jnp.float32) * total + 0.5)
  frac = jnp.asarray(k, jnp.float32) / max(freezes, 1)
  kept = jnp.floor(total * (c / total) ** frac + 0.5)
  return jnp.where(k >= freezes, c, kept).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class IterativeFreezing:
  """GEM-MINER's iterative freezing as a mask updater over the scores.

  Attributes:
    period: optimizer steps between freezes (``freeze_every`` epochs).
    freezes: how many freezes (n); the k-th acts after step ``k * period``.
    keep: the top-level params leaf holding the replica's target density.
  """
  period: int
  freezes: int
  keep: str = "keep"

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    del params, mask
    return ()

  def is_update_step(self, step: jax.Array) -> jax.Array:
    done = step + 1  # optimizer steps finished after this one
    k = done // self.period
    return (done % self.period == 0) & (k >= 1) & (k <= self.freezes)

  def update(self, step, params, grads, mask, state, key):
    del grads, key
    is_none = lambda x: x is None
    leaves, treedef = jax.tree.flatten(mask, is_leaf=is_none)
    scores = treedef.flatten_up_to(params)
    idx = [i for i, m in enumerate(leaves) if m is not None]
    alive = [leaves[i] for i in idx]
    total = sum(int(np.prod(a.shape)) for a in alive)
    k = (step + 1) // self.period
    target = freeze_count(total, params[self.keep], k, self.freezes)
    magnitude = jnp.concatenate([jnp.abs(scores[i]).reshape(-1) for i in idx])
    kept = masks_lib.keep_largest(
        magnitude, jnp.concatenate([a.reshape(-1) for a in alive]), target)
    new, start = list(leaves), 0
    for i, a in zip(idx, alive):
      new[i] = kept[start:start + a.size].reshape(a.shape)
      start += a.size
    return jax.tree.unflatten(treedef, new), state


def schedule(steps: int, period: int) -> int:
  """Number of freezes that fit in ``steps`` optimizer steps, one every
  ``period`` steps, with at least one step of score training after the
  last: ``floor((steps - 1) / period)`` (the code's ``floor((E - 1) /
  T)`` in epochs)."""
  return max(0, (steps - 1) // period)


def kernel_masks(params: PyTree, flag: PyTree, like: PyTree,
                 final: str = "flag") -> PyTree:
  """The mask on the kernels for weight training, shaped like ``like``
  (a weight-training mask: bool on prunable kernels, None elsewhere), from
  one replica's (or stacked) Supermask ``params`` and the freeze ``flag``
  (the updater's mask over the scores). ``final``: ``flag`` or
  ``rounded`` (flag * [p > 1/2]); see :data:`FINALS`."""
  if final not in FINALS:
    raise ValueError(f"Unknown final mask {final!r}; choose one of "
                     f"{', '.join(FINALS)}.")

  def one(path, m):
    if m is None:
      return None
    *parent, leaf = [getattr(k, "key", k) for k in path]
    if leaf != "kernel":
      raise ValueError(f"{'/'.join(parent + [leaf])} is prunable but not a "
                       "kernel: GEM-MINER scores kernels only.")
    f, p = flag, params
    for name in parent:
      f, p = f[name], p[name]
    out = f["scores"]
    if final == "rounded":
      out = out & (p["scores"] > THRESHOLD)
    return jnp.asarray(out).astype(bool)

  return jax.tree_util.tree_map_with_path(one, like,
                                          is_leaf=lambda x: x is None)


def merge_weights(weights: PyTree, supermask_params: PyTree) -> PyTree:
  """Supermask params whose body leaves are ``weights`` (e.g. theta_0 of the
  comparison) and whose ``scores`` and ``keep`` come from
  ``supermask_params`` (the Supermask's init): the frozen weights are the
  given initialization, not the Supermask's re-drawn kernels."""
  def walk(w, s):
    if not isinstance(s, dict):
      return w
    out = {k: walk(w[k], v) for k, v in s.items() if k in w}
    out.update({k: v for k, v in s.items() if k not in w})
    return out
  return walk(dict(weights), dict(supermask_params))


__all__ = ["GemMinerRule", "IterativeFreezing", "freeze_count",
           "schedule", "kernel_masks", "merge_weights", "THRESHOLD",
           "FINALS", "SCORES"]
