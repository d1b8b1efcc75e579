"""Continual-learning metrics of an accuracy matrix (pure NumPy).

``A[i, j]`` is the accuracy on task j after training tasks 0..i; ``b[j]``
the accuracy on task j of the network before any training. Definitions of
Lopez-Paz & Ranzato (GEM, NeurIPS 2017, Sec. 4), which HAT and DSN report:

- average accuracy ACC = mean_j A[T-1, j];
- backward transfer BWT = mean_{j < T-1} (A[T-1, j] - A[j, j]) (negative =
  forgetting);
- forward transfer FWT = mean_{j >= 1} (A[j-1, j] - b[j]) (what training
  earlier tasks gives a task before it is trained).

Every function takes a trailing [T, T] (and [T]) and keeps leading axes
(replicas).
"""

from __future__ import annotations

import numpy as np


def average_accuracy(a: np.ndarray) -> np.ndarray:
  a = np.asarray(a, np.float64)
  return a[..., -1, :].mean(-1)


def bwt(a: np.ndarray) -> np.ndarray:
  a = np.asarray(a, np.float64)
  t = a.shape[-1]
  last = a[..., -1, : t - 1]
  diag = np.diagonal(a, axis1=-2, axis2=-1)[..., : t - 1]
  return (last - diag).mean(-1)


def fwt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  t = a.shape[-1]
  before = np.stack([a[..., j - 1, j] for j in range(1, t)], -1)
  return (before - b[..., 1:]).mean(-1)


__all__ = ["average_accuracy", "bwt", "fwt"]
