"""Statistics over replicas (seeds): mean, std, per-seed values."""

from __future__ import annotations

import numpy as np


def stats(values: np.ndarray, valid: np.ndarray | None = None) -> dict:
  """``{"mean", "std", "per_seed"}`` of per-replica values; with ``valid``
  (e.g. not diverged) the mean and std use only those replicas and the
  others read ``None`` in ``per_seed``."""
  values = np.asarray(values, np.float64)
  valid = np.ones(values.shape, bool) if valid is None else np.asarray(valid)
  kept = values[valid]
  return {"mean": float(kept.mean()) if kept.size else None,
          "std": float(kept.std()) if kept.size else None,
          "per_seed": [float(v) if ok else None
                       for v, ok in zip(values, valid)]}


def mean_ci(values: np.ndarray, level: float = 0.95
            ) -> tuple[float | None, float | None]:
  """Student-t confidence interval of the mean of ``values`` (NaN and None
  dropped); (None, None) with fewer than two values."""
  v = np.asarray([x for x in np.ravel(values) if x is not None], np.float64)
  v = v[np.isfinite(v)]
  if v.size < 2:
    return None, None
  from scipy import stats as scipy_stats  # only when a CI is asked for
  half = scipy_stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / \
      np.sqrt(v.size)
  return float(v.mean() - half), float(v.mean() + half)


def welch_se_dof(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """Standard error of mean(a) - mean(b) and its Welch-Satterthwaite
  degrees of freedom (Welch 1947); both samples need two or more values.
  The degrees of freedom are NaN when both variances are 0."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = float(np.sqrt(va + vb))
  with np.errstate(invalid="ignore", divide="ignore"):
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  return se, float(dof)


def welch(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict:
  """mean(a) - mean(b) with a Welch confidence interval and the two-sided
  p-value of Welch's t-test (None where undefined)."""
  a, b = (np.asarray(x, np.float64) for x in (a, b))
  a, b = a[np.isfinite(a)], b[np.isfinite(b)]
  out = {"gap": float(a.mean() - b.mean()) if a.size and b.size else None,
         "ci_low": None, "ci_high": None, "p_value": None}
  if a.size < 2 or b.size < 2:
    return out
  from scipy import stats as scipy_stats
  se, dof = welch_se_dof(a, b)
  if se == 0:
    return out
  half = scipy_stats.t.ppf(0.5 + level / 2, dof) * se
  out.update(ci_low=out["gap"] - half, ci_high=out["gap"] + half,
             p_value=float(2 * scipy_stats.t.sf(abs(out["gap"]) / se, dof)))
  return out
