"""Why tickets win: init/final weight correlation and top-weight overlap.

- Liu et al. (ICML 2021, "Lottery ticket preserves weight correlation"):
  winning tickets keep trained weights correlated with their initialization,
  which happens when the learning rate is small.
- Ma et al. (NeurIPS 2021, Appendix G): the overlap ratio between the top-p%
  largest-magnitude weights of theta_0 * m and of theta_T * m; high at small
  LRs (the mask "remembers" theta_0), vanishing at large LRs.

Computed per prunable layer on host arrays of one replica.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxticket.core import masks as masks_lib

PyTree = Any


def correlation(w0: np.ndarray, wt: np.ndarray, keep: np.ndarray) -> float:
  """Pearson correlation of initial and trained weights over kept entries."""
  a, b = np.asarray(w0)[keep].ravel(), np.asarray(wt)[keep].ravel()
  if a.size < 2 or a.std() == 0 or b.std() == 0:
    return float("nan")
  return float(np.corrcoef(a, b)[0, 1])


def top_overlap(w0: np.ndarray, wt: np.ndarray, keep: np.ndarray,
                top: float) -> float:
  """|top-k(|w0|) ∩ top-k(|wt|)| / k among kept weights, k = ceil(top*kept).

  Random, independent orderings give an expected overlap of ``top``.
  """
  a, b = np.abs(np.asarray(w0)[keep]).ravel(), np.abs(
      np.asarray(wt)[keep]).ravel()
  k = int(np.ceil(top * a.size))
  if k == 0:
    return float("nan")
  ta = set(np.argsort(-a, kind="stable")[:k].tolist())
  tb = set(np.argsort(-b, kind="stable")[:k].tolist())
  return len(ta & tb) / k


def layer_diagnostics(init: PyTree, trained: PyTree, mask: PyTree,
                      top: float = 0.2) -> dict[str, dict[str, float]]:
  """``{layer path: {"correlation", "overlap"}}`` for one replica."""
  out = {}
  flat = jax.tree_util.tree_flatten_with_path(
      mask, is_leaf=lambda x: x is None)[0]
  w0s = jax.tree.leaves(init)
  wts = jax.tree.leaves(trained)
  paths = [masks_lib.path_str(p) for p, _ in
           jax.tree_util.tree_flatten_with_path(init)[0]]
  index = {p: i for i, p in enumerate(paths)}
  for p, m in flat:
    if m is None:
      continue
    name = masks_lib.path_str(p)
    keep = np.asarray(m, bool)
    w0, wt = w0s[index[name]], wts[index[name]]
    out[name] = {"correlation": correlation(w0, wt, keep),
                 "overlap": top_overlap(w0, wt, keep, top)}
  return out
