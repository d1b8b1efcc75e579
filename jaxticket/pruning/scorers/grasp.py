"""GraSP: gradient signal preservation (Wang, Zhang, Grosse, ICLR 2020).

GraSP removes the weights whose removal reduces the gradient norm least (or
raises it most): its score is S(-w) = -w * (H g) (Eq. 8), with g the
gradient of the loss and H its Hessian, both of the loss of the logits
divided by a temperature T (T = 200 in alecwangcq/GraSP), and it removes
the weights with the LARGEST S. Our allocators keep the largest score, so
this scorer returns the negation, w * (H g): a weight is kept when removing
it would reduce the gradient flow the most. Scores are divided by
|sum| + 1e-10 as the reference code does (the ranking does not change).

H g is a Hessian-vector product, computed by forward-over-reverse
differentiation (``jax.jvp`` of ``jax.grad``) without forming H; as in the
reference code, g and H g are taken over the prunable weights only (g is
held fixed, zero on other leaves). The loss is summed over
``ctx.batches`` (the reference code sums over its two half-batches of 10
examples per class). alecwangcq/GraSP by default (``reinit=True``) scores
a copy whose Linear layers are re-initialized (Xavier normal) while the
mask is applied to the original net; we score the weights given unless
``reinit`` is set, which re-draws every prunable rank-2 (Dense) kernel the
same way from ``ctx.key`` before scoring (docs/findings.md: why it matters).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxticket.pruning.scorers.context import (ScoreContext, normalize,
                                               on_prunable)

#: GraSP's temperature (alecwangcq/GraSP, ``T=200``).
TEMPERATURE = 200.0


def hessian_gradient(ctx: ScoreContext, temperature: float = TEMPERATURE):
  """(g, H g) of the temperature-scaled loss at the masked weights; both
  zero outside the prunable leaves, g masked."""
  w = ctx.masked_params()
  loss = lambda p: ctx.total_loss(p, temperature)
  grad = jax.grad(loss)(w)
  g = jax.tree.map(
      lambda x, m: jnp.zeros_like(x) if m is None else
      jnp.where(m, jax.lax.stop_gradient(x), 0.0), grad, ctx.mask,
      is_leaf=lambda x: x is None)
  _, hg = jax.jvp(jax.grad(loss), (w,), (g,))
  return g, hg


def xavier_reinit(ctx: ScoreContext) -> ScoreContext:
  """``ctx`` with every prunable rank-2 kernel re-drawn Xavier-normal
  (std sqrt(2 / (fan_in + fan_out)), torch's xavier_normal_), as GraSP's
  code re-initializes each nn.Linear of its scoring copy; conv kernels,
  biases and unprunable leaves stay."""
  if ctx.key is None:
    raise ValueError("GraSP with reinit needs ScoreContext.key")
  leaves, treedef = jax.tree.flatten(ctx.params)
  masks = jax.tree.leaves(ctx.mask, is_leaf=lambda x: x is None)
  keys = jax.random.split(jax.random.fold_in(ctx.key, 0x6a5), len(leaves))
  out = []
  for w, m, k in zip(leaves, masks, keys):
    if m is not None and w.ndim == 2:
      std = jnp.sqrt(2.0 / (w.shape[0] + w.shape[1]))
      w = std * jax.random.normal(k, w.shape, w.dtype)
    out.append(w)
  return dataclasses.replace(ctx, params=jax.tree.unflatten(treedef, out))


def grasp(ctx: ScoreContext, temperature: float = TEMPERATURE,
          reinit: bool = False):
  """w * (H g), normalized: higher = kept (the negation of GraSP's S);
  with ``reinit``, of the Xavier re-drawn copy (the authors' default)."""
  if reinit:
    ctx = xavier_reinit(ctx)
  _, hg = hessian_gradient(ctx, temperature)
  w = ctx.masked_params()
  scores = on_prunable(lambda h, p: p * h, ctx.mask, hg, w)
  return normalize(scores, absolute=True, eps=1e-10)


__all__ = ["grasp", "hessian_gradient", "xavier_reinit", "TEMPERATURE"]
