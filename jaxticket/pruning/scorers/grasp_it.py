"""GRASP-It: the iterative GraSP variant of de Jorge et al. (ICLR 2021,
"Progressive Skeletonization: Trimming more fat from a network at
initialization"; naver/force, ``pruning/pruning_algos.py``,
``prune_method=2``).

GraSP (Wang et al. 2020) keeps the weights whose removal would lower the
gradient norm ||g||^2 the most, through the Hessian-gradient product
-w * Hg (:mod:`jaxticket.pruning.scorers.grasp`). De Jorge et al.'s
iterative version scores the *masked* network at every round with the
squared gradient g_j^2 (weight j's own share of ||g||^2: what removing its
gradient coordinate takes from the norm; "custom gradient norm
approximation" in their code), keeps the globally largest, and re-scores
over an exponential density schedule; pruned weights never come back.
``jaxticket pai``'s ``grasp_iter`` is this scorer iterated by
:mod:`jaxticket.pruning.rounds` (``pai.iterative_rounds`` rounds, density
d^(k/n) at round k, exact counts: their code keeps ``int(N * d^(k/n))``
with ties at the threshold kept). Not GraSP's -w * Hg iterated: no paper
we checked runs that (see the ``pai`` README section).

Scores are normalized by their sum (the ranking does not change); the loss
is summed over ``ctx.batches`` (their code averages the gradient over
``num_batches`` batches, one by default).
"""

from __future__ import annotations

import jax

from jaxticket.pruning.scorers.context import (ScoreContext, normalize,
                                               on_prunable)


def grasp_it(ctx: ScoreContext):
  """g^2 of the loss at the masked weights, normalized."""
  w = ctx.masked_params()
  grads = jax.grad(ctx.total_loss)(w)
  return normalize(on_prunable(lambda g: g * g, ctx.mask, grads))


__all__ = ["grasp_it"]
