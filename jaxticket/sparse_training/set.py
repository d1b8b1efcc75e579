"""SET (Mocanu et al., Nature Communications 2018): drop the smallest
weights, regrow at random.

The schedule is RigL's (Evci et al. 2020 run SET that way, and so does the
reference code google-research/rigl, ``SparseSETOptimizer``): every
``update_every`` steps until ``end_step``, per layer, a cosine-decayed
fraction alpha_t of the active weights with the smallest |w| is dropped and
as many connections are grown uniformly at random among those not kept.
Grown weights start at 0 with zero moments; active counts are unchanged.
Mocanu et al. remove a fixed fraction zeta of the smallest positive and
largest negative weights each epoch, i.e. smallest |w| up to the split
between signs; we follow the RigL code's |w|.
"""

from __future__ import annotations

import dataclasses

import jax

from jaxticket.sparse_training.rigl import RigL


@dataclasses.dataclass(frozen=True)
class SET(RigL):
  """SET for one replica: RigL's drop rule and schedule, random growth."""

  def grow_scores(self, grads: list, key: jax.Array) -> list:
    keys = jax.random.split(key, max(len(grads), 1))
    return [jax.random.uniform(k, g.shape) for k, g in zip(keys, grads)]
