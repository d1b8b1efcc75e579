"""core.stats against scipy's own t-tests and intervals."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from jaxticket.core import stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy_unequal_variance_ttest(seed):
  rng = np.random.default_rng(seed)
  a = rng.normal(0.9, 0.02, 5)
  b = rng.normal(0.88, 0.05, 8)
  got = stats.welch(a, b)
  ref = scipy_stats.ttest_ind(a, b, equal_var=False)
  assert got["gap"] == pytest.approx(a.mean() - b.mean())
  assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
  low, high = ref.confidence_interval(0.95)
  assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))


def test_welch_undefined_cases_give_none():
  assert stats.welch([0.5], [0.4, 0.6])["ci_low"] is None
  same = stats.welch([0.5, 0.5], [0.4, 0.4])  # zero variance: no interval
  assert same["gap"] == pytest.approx(0.1) and same["p_value"] is None


def test_mean_ci_matches_scipy_t_interval_and_drops_missing():
  v = np.array([0.91, 0.93, 0.90, 0.95])
  low, high = stats.mean_ci(list(v) + [None, float("nan")])
  ref = scipy_stats.t.interval(0.95, v.size - 1, loc=v.mean(),
                               scale=scipy_stats.sem(v))
  assert (low, high) == pytest.approx(ref)
  assert stats.mean_ci([0.9]) == (None, None)
