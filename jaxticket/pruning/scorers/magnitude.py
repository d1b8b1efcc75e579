"""Magnitude: |w| (Han et al. 2015; the IMP criterion of Frankle & Carbin
2019). On theta_0 it is "magnitude at initialization", a pruning-at-init
baseline of Lee et al. (2019), Wang et al. (2020) and Tanaka et al. (2020)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxticket.pruning.scorers.context import ScoreContext, on_prunable


def magnitude(ctx: ScoreContext):
  """|w| on every prunable leaf."""
  return on_prunable(jnp.abs, ctx.mask, ctx.params)
