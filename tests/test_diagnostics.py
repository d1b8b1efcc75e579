import numpy as np
import pytest

from jaxticket.experiments.sanity import diagnostics


def test_correlation_and_overlap_reference():
  rng = np.random.default_rng(0)
  w0 = rng.normal(size=(30, 20))
  keep = rng.random((30, 20)) < 0.5
  # Identical weights: correlation 1, full overlap.
  assert diagnostics.correlation(w0, w0, keep) == pytest.approx(1.0)
  assert diagnostics.top_overlap(w0, w0, keep, 0.2) == 1.0
  # Independent weights: correlation ~0, overlap ~top.
  wt = rng.normal(size=(30, 20))
  assert abs(diagnostics.correlation(w0, wt, keep)) < 0.15
  assert abs(diagnostics.top_overlap(w0, wt, keep, 0.2) - 0.2) < 0.12
  # Reference for a scaled copy: magnitudes keep their order.
  assert diagnostics.top_overlap(w0, -3 * w0, keep, 0.3) == 1.0
  a, b = w0[keep], wt[keep]
  assert diagnostics.correlation(w0, wt, keep) == pytest.approx(
      np.corrcoef(a, b)[0, 1])


def test_layer_diagnostics_only_prunable():
  rng = np.random.default_rng(1)
  init = {"a": {"kernel": rng.normal(size=(4, 5)), "bias": np.zeros(5)}}
  trained = {"a": {"kernel": init["a"]["kernel"] * 2, "bias": np.ones(5)}}
  mask = {"a": {"kernel": np.ones((4, 5), bool), "bias": None}}
  d = diagnostics.layer_diagnostics(init, trained, mask, 0.5)
  assert set(d) == {"a/kernel"}
  assert d["a/kernel"]["correlation"] == pytest.approx(1.0)
