"""SynFlow: iterative synaptic flow pruning (Tanaka, Kunin, Yamins, Ganguli,
NeurIPS 2020), the data-free score of one round.

Every parameter and BatchNorm statistic is replaced by its absolute value
(the network is "linearized": with non-negative weights and an all-ones
input every ReLU passes its input), the all-ones input of one example runs
through the model in eval mode (running BatchNorm statistics), R is the
sum of the outputs, and the score is |w * dR/dw| (Eq. 2; ganguli-lab/
Synaptic-Flow, ``SynFlow.score``). The rounds with the exponential density
schedule d^(k/n) are :func:`jaxticket.pruning.rounds.prune_in_rounds`.

Float32 safety. R grows like the product of the layers' gains: at He
initialization log2 R is 13.5 for LeNet-300-100, 91 for VGG-19, 134 for
ResNet-32, 235 for ResNet-56 (float32 overflows above 2^128), and the
reference code (float32; its ``model.double()`` is commented out) returns
inf/NaN scores there. We rescale exactly instead: the linearized network
is positively homogeneous of degree one in (input, additive parameters)
jointly, so feeding 2^-a * ones with every bias and BatchNorm mean also
multiplied by 2^-a scales every activation by exactly 2^-a, and
differentiating 2^-b * R scales every cotangent by 2^-b. Every score is
then exactly 2^-(a+b) times the true one (powers of two: no rounding), a
common factor that changes no ranking. a = b = ceil(log2 R / 2), with
log2 R measured by a probe forward pass at input scale 2^-100 (or 1 for
tiny R), centre both passes in float32's range: safe while log2 R stays
below about 245 (ResNet-56 included, ResNet-110 at 2^462 not; such a net
gives non-finite scores, which :func:`log2_flow` lets a caller detect
beforehand). Per-layer rescaling of the kernels was rejected: it is exact
for chains only; on a residual net it reweights paths of different
lengths. Which leaves are additive is decided by name: ``bias`` and
BatchNorm ``mean``.

Scores are returned in that rescaled unit (not multiplied back, which could
overflow); ``jaxticket.pruning.rounds`` ranks them per replica.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxticket.core import masks as masks_lib
from jaxticket.pruning.scorers.context import ScoreContext, on_prunable

#: Leaf names that enter the network additively (scaled with the input).
ADDITIVE = ("bias", "mean")
#: Input scale exponent of the probe pass that measures log2 R.
PROBE = 100
#: Largest exponent used for either scale (2^-MAX_SHIFT stays normal).
MAX_SHIFT = 120


def _scale_additive(tree, scale: jax.Array):
  def leaf(path, x):
    name = masks_lib.path_str(path).rsplit("/", 1)[-1]
    return x * scale if name in ADDITIVE else x
  return jax.tree_util.tree_map_with_path(leaf, tree)


def linearize(ctx: ScoreContext):
  """(|masked params|, |batch statistics|)."""
  return (jax.tree.map(jnp.abs, ctx.masked_params()),
          jax.tree.map(jnp.abs, ctx.batch_stats or {}))


def flow(ctx: ScoreContext, params, stats, scale: jax.Array) -> jax.Array:
  """R(params) with input and additive leaves times ``scale``: exactly
  ``scale * R`` of the linearized net (eval-mode BatchNorm)."""
  if ctx.forward is None or not ctx.input_shape:
    raise ValueError("SynFlow needs ScoreContext.forward and input_shape.")
  x = jnp.full((1, *ctx.input_shape), scale, jnp.float32)
  out = ctx.forward(_scale_additive(params, scale),
                    _scale_additive(stats, scale), x, False)
  return jnp.sum(out.astype(jnp.float32))


def _pow2(exponent: jax.Array) -> jax.Array:
  return jnp.ldexp(jnp.float32(1.0), exponent.astype(jnp.int32))


def log2_flow(ctx: ScoreContext) -> jax.Array:
  """log2 R of the linearized masked network, from probe passes at input
  scales 2^-100 and 1; ``inf`` when even the first overflows (log2 R above
  about 227), a sign that :func:`synflow` is outside its float32 range."""
  params, stats = linearize(ctx)
  low = flow(ctx, params, stats, _pow2(jnp.int32(-PROBE)))
  one = flow(ctx, params, stats, jnp.float32(1.0))
  # The low probe is accurate unless R is tiny (values near 2^-126).
  use_low = jnp.isfinite(low) & (low > jnp.float32(2.0 ** -60))
  safe = lambda v: jnp.log2(jnp.where(v > 0, v, 1.0))
  return jnp.where(
      ~jnp.isfinite(low), jnp.inf,
      jnp.where(use_low, safe(low) + PROBE,
                jnp.where(one > 0, safe(one), 0.0)))


def synflow(ctx: ScoreContext):
  """One round of SynFlow scores |w * dR/dw|, in units of 2^(a+b)."""
  params, stats = linearize(ctx)
  log2r = log2_flow(ctx)
  half = jnp.where(jnp.isfinite(log2r), jnp.ceil(log2r / 2), MAX_SHIFT)
  shift = jnp.clip(half, -MAX_SHIFT, MAX_SHIFT)
  s, t = _pow2(-shift), _pow2(-shift)
  grads = jax.grad(lambda p: t * flow(ctx, p, stats, s))(params)
  return on_prunable(lambda g, p: jnp.abs(g * p), ctx.mask, grads, params)


__all__ = ["synflow", "log2_flow", "flow", "linearize", "ADDITIVE"]
