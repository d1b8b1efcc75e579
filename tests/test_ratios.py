"""Layer-density rules against re-implementations written from their
descriptions (Evci et al. 2020, ERK; the uniform rule)."""

import numpy as np
import pytest

from jaxticket.core.checks import ConfigError
from jaxticket.pruning import ratios

LENET = [(40, 300), (300, 100), (100, 10)]
CONVNET = [(3, 3, 3, 16), (3, 3, 16, 32), (3, 3, 32, 64), (64, 10)]


def erk_reference(shapes, density):
  """ERK as RigL describes it: one dense layer added per round, the one
  with the largest raw score, until no layer exceeds density 1."""
  n = np.array([np.prod(s) for s in shapes], float)
  raw = np.array([sum(s) / np.prod(s) for s in shapes], float)
  dense = set()
  while True:
    free = [i for i in range(len(shapes)) if i not in dense]
    eps = (density * n.sum() - sum(n[i] for i in dense)) / sum(
        raw[i] * n[i] for i in free)
    worst = max(free, key=lambda i: raw[i])
    if eps * raw[worst] <= 1:
      return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
    dense.add(worst)


@pytest.mark.parametrize("shapes", [LENET, CONVNET])
@pytest.mark.parametrize("density", [0.02, 0.1, 0.5, 0.9])
def test_erk_matches_reference_and_hits_target(shapes, density):
  got = ratios.erk(shapes, density)
  np.testing.assert_allclose(got, erk_reference(shapes, density), rtol=1e-9)
  n = np.array([np.prod(s) for s in shapes], float)
  assert all(0 < d <= 1 for d in got)
  np.testing.assert_allclose(np.dot(got, n) / n.sum(), density, rtol=1e-9)


def test_erk_makes_small_layers_dense_first():
  got = ratios.erk(LENET, 0.5)
  # raw scores: 100x10 head 0.11 > 40x300 input 0.028 > 300x100 0.013
  assert got[-1] == 1.0
  assert got[1] < got[0] < 1.0


def test_erk_power_zero_is_uniform():
  np.testing.assert_allclose(ratios.erk(CONVNET, 0.3, power_scale=0.0),
                             ratios.uniform(CONVNET, 0.3))


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5])
def test_bad_density_is_a_config_error(density):
  with pytest.raises(ConfigError, match="density"):
    ratios.erk(LENET, density)


def test_kept_counts_exact_total_and_bounds():
  sizes = [int(np.prod(s)) for s in CONVNET]
  for density in (0.013, 0.1, 0.77):
    d = ratios.erk(CONVNET, density)
    counts = ratios.kept_counts(sizes, d, density)
    assert sum(counts) == round(density * sum(sizes))
    assert all(0 <= c <= s for c, s in zip(counts, sizes))
    assert all(abs(c - x * s) < 1 + 1e-9 for c, x, s in zip(counts, d, sizes))


def test_unknown_rule_names_key():
  with pytest.raises(ConfigError, match="sparse.init_ratio"):
    ratios.get("erdos", key="sparse.init_ratio")
