"""Teacher-student regression data: Gaussian inputs labelled by a pruned
one-hidden-layer ReLU teacher (Zhang, Wang, Liu, Chen, Xiong, NeurIPS 2021,
"Why lottery ticket wins? A theoretical perspective of sample complexity on
pruned neural networks", Sec. 2: x ~ N(0, I_d), y = (1/K) sum_j
relu(w_j*^T (m_j * x)), the output layer fixed).

Served as an in-memory :class:`~jaxticket.data.Dataset` with
``task="regression"`` (no files: generated from seeds, identical on every
machine), so the platform's Trainer and the regression task train students
on it unchanged.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Teacher:
  """Hidden kernel ``weights`` (d, K), zero where ``mask`` (d, K) is False;
  output weights fixed at 1/K."""
  weights: np.ndarray
  mask: np.ndarray

  @property
  def dim(self) -> int:
    return self.weights.shape[0]

  @property
  def hidden(self) -> int:
    return self.weights.shape[1]

  @property
  def unpruned(self) -> int:
    """Unpruned hidden weights (Zhang et al.'s sum_j r_j)."""
    return int(self.mask.sum())

  def __call__(self, x: np.ndarray) -> np.ndarray:
    """(N, 1) outputs for inputs (N, d), in float64."""
    h = np.maximum(np.asarray(x, np.float64) @ self.weights, 0.0)
    return h.mean(axis=1, keepdims=True)


def make_teacher(dim: int, hidden: int, kept: int, seed: int) -> Teacher:
  """A teacher whose every hidden unit reads ``kept`` of the ``dim``
  inputs (chosen at random per unit), with N(0, 1/kept) weights there (so
  ||w_j|| is about 1 whatever the density)."""
  if not 1 <= kept <= dim:
    raise ValueError(f"kept={kept} inputs per unit must be in [1, {dim}].")
  rng = np.random.default_rng(seed)
  mask = np.zeros((dim, hidden), bool)
  for j in range(hidden):
    mask[rng.choice(dim, kept, replace=False), j] = True
  weights = np.where(mask, rng.normal(size=(dim, hidden)) / np.sqrt(kept),
                     0.0)
  return Teacher(weights, mask)


def teacher_dataset(teacher: Teacher, train: int, val: int, test: int,
                    seed: int, noise: float = 0.0):
  """Gaussian inputs with the teacher's outputs (plus N(0, noise^2) label
  noise on the training and validation labels) as a regression
  :class:`~jaxticket.data.Dataset`: x (N, d) float32, y (N, 1) float32,
  identity normalization."""
  from jaxticket.data import Dataset  # the package imports this module
  rng = np.random.default_rng(seed)
  d = teacher.dim

  def split(n: int, noisy: bool):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = teacher(x)
    if noisy and noise > 0:
      y = y + noise * rng.normal(size=y.shape)
    return x, y.astype(np.float32)

  train_x, train_y = split(train, True)
  val_x, val_y = split(val, True)
  test_x, test_y = split(test, False)
  return Dataset(
      name="teacher", train_x=train_x, train_y=train_y, val_x=val_x,
      val_y=val_y, test_x=test_x, test_y=test_y, num_classes=1, scale=1.0,
      mean=np.zeros(d, np.float32), std=np.ones(d, np.float32),
      augment=False, task="regression")


__all__ = ["Teacher", "make_teacher", "teacher_dataset"]
