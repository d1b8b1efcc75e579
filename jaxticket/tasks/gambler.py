"""Deep Gamblers (Liu et al., NeurIPS 2019): classification with an abstain
output, trained with the gambler's loss.

The network has m + 1 outputs; softmax gives f(x) over the m classes and
the abstain option m + 1. Eq. (6) of the paper is
``l(x, y) = -log(o * f_y(x) + f_{m+1}(x))`` with payoff o in (1, m]; the
authors' code (Z-T-WANG/NIPS2019DeepGamblers, ``main.py``) minimizes
``-log(f_y + f_{m+1} / o)``, which differs by the constant log o and has the
same gradients. We follow the code (so the loss of a confident correct
answer tends to 0). Smaller o makes abstaining cheaper; when
o < 1 / max_y p(y|x) the optimum puts all mass on abstaining (Sec. 3).

As in the code: the first ``pretrain_steps`` steps train with plain
cross-entropy on the m class outputs (the authors' ``--pretrain`` epochs,
100 of 300 on CIFAR-10 for o < 6.1, "so that the learning can always
start"); predictions (accuracy) are the argmax of the m class outputs; test
points are ranked by the abstain probability (lowest = answered first).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxticket.core import selective


@dataclasses.dataclass(frozen=True)
class Gambler:
  """Outputs [B, m + 1] (the last = abstain); integer labels in [0, m)."""
  payoff: float = 2.2
  pretrain_steps: int = 0
  score_name: str = "accuracy"
  #: Outputs the model needs beyond the dataset's classes.
  extra_outputs: int = 1

  def losses(self, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The gambler's loss ``-log(f_y + f_abstain / o)`` per example, from
    log-probabilities (logsumexp; finite even where f_y underflows)."""
    logp = jax.nn.log_softmax(outputs, axis=-1)
    gain = jnp.take_along_axis(logp[:, :-1], targets[:, None], axis=-1)[:, 0]
    reserve = logp[:, -1] - jnp.log(self.payoff)
    return -jnp.logaddexp(gain, reserve)

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    correct = (jnp.argmax(outputs[:, :-1], -1) == targets).astype(jnp.float32)
    return self.losses(outputs, targets), correct

  def training_losses(self, outputs: jax.Array, targets: jax.Array,
                      step: jax.Array) -> jax.Array:
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs[:, :-1],
                                                         targets)
    return jnp.where(step < self.pretrain_steps, ce,
                     self.losses(outputs, targets))

  def confidence(self, outputs: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
    """(minus the abstain probability, softmax response of the m class
    outputs)."""
    abstain = jax.nn.softmax(outputs, axis=-1)[:, -1]
    return -abstain, selective.softmax_response(outputs[:, :-1])
