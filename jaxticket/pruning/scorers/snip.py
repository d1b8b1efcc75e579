"""SNIP: connection sensitivity (Lee, Ajanthan, Torr, ICLR 2019).

The score of weight j is |dL/dc_j| at c = 1 for the masked network
w * c, i.e. |g_j * w_j| with g the gradient of the loss at the (masked)
weights (Eq. 5-6), normalized by its sum over all prunable weights (Eq. 6;
the ranking does not depend on it). The loss is summed over
``ctx.batches`` (Synaptic-Flow sums gradients over its scoring batches;
snip-public uses one batch of 100). BatchNorm uses batch statistics.

Which weights are trained afterwards is the experiment's choice, not the
scorer's: Lee et al.'s Algorithm 1 and the Synaptic-Flow and Su et al. codes
train the scored weights; namhoonlee/snip-public scores one initialization
(``weights_bp``) and trains another (``weights_ap``) under the mask
(``pai.init=fresh`` in ``jaxticket pai``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxticket.pruning.scorers.context import (ScoreContext, normalize,
                                               on_prunable)


def sensitivity(ctx: ScoreContext):
  """|g * w| on prunable leaves, unnormalized (g at the masked weights)."""
  w = ctx.masked_params()
  grads = jax.grad(ctx.total_loss)(w)
  return on_prunable(lambda g, p: jnp.abs(g * p), ctx.mask, grads, w)


def snip(ctx: ScoreContext):
  """SNIP's normalized connection sensitivity |g * w| / sum |g * w|."""
  return normalize(sensitivity(ctx))
