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
