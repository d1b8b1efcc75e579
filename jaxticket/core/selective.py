"""Selective classification: coverage-risk curves and their area (AURC).

A selective classifier answers only the examples it is most confident
about. Sorting a split by a confidence score (highest first), the risk at
coverage k/n is the error rate among the first k examples; the
coverage-risk curve is that risk for k = 1..n and AURC (Geifman et al.,
ICLR 2019) is its mean, the area under the curve with the discrete
coverages k/n. Deep Gamblers (Liu et al., NeurIPS 2019, Sec. 4) ranks by
the abstain output ``f_{m+1}`` (lowest first), which is the same as ranking
by ``-f_{m+1}``; a net without one ranks by its softmax response
(the largest class probability). Ties keep the split's order (a stable
sort), so the NumPy reference in the tests is exact.

Pure functions of one replica (arrays over one split's examples); the loop
computes them inside the compiled evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Coverages at which evaluations report the risk (the coverage-risk
#: curve's summary; Liu et al.'s tables use 100 .. 10%).
COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def risk_curve(confidence: jax.Array, correct: jax.Array) -> jax.Array:
  """risk[k-1] = error rate of the k most confident examples, k = 1..n
  (``confidence`` [n], higher = answered first; ``correct`` [n] in {0, 1})."""
  order = jnp.argsort(-confidence, stable=True)
  errors = jnp.cumsum(1.0 - correct[order].astype(jnp.float32))
  return errors / jnp.arange(1, confidence.shape[0] + 1, dtype=jnp.float32)


def aurc(confidence: jax.Array, correct: jax.Array) -> jax.Array:
  """Area under the coverage-risk curve: the mean of :func:`risk_curve`
  (0 for a perfect classifier; the error rate for a random ranking, in
  expectation)."""
  return jnp.mean(risk_curve(confidence, correct))


def risk_at(confidence: jax.Array, correct: jax.Array,
            coverages: tuple[float, ...] = COVERAGES) -> jax.Array:
  """The risk when answering the ``round(c * n)`` most confident examples,
  for each coverage c (at least one example), as the authors' evaluation
  counts them."""
  n = confidence.shape[0]
  curve = risk_curve(confidence, correct)
  ks = [max(1, int(round(c * n))) for c in coverages]
  return curve[jnp.asarray(ks) - 1]


def softmax_response(logits: jax.Array) -> jax.Array:
  """The largest softmax probability of each row of ``logits`` [B, m]."""
  return jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)
