"""The replica axis by name: which grid point, setting, seed or child each
replica is.

A program trains R replicas on one leading axis; R is a product of named
factors, e.g. ``ReplicaAxis.of(lr=(0.03, 0.1, 0.3), seed=(0, 1, 2))`` (9
replicas, lr-major: replica ``3 * i + j`` has the i-th LR and the j-th
seed). Experiments ask for replicas by name (``axis.index(lr=0.1)``,
``axis.groups("setting")``) instead of spreading index arithmetic over
their code.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterable, Sequence

import jax
import numpy as np

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ReplicaAxis:
  """Factors (name, values), outermost first; the replicas are their
  Cartesian product in row-major order."""
  factors: tuple[tuple[str, tuple], ...]

  def __post_init__(self):
    names = [n for n, _ in self.factors]
    if len(set(names)) != len(names):
      raise ValueError(f"Replica factors must have distinct names: {names}.")

  @classmethod
  def of(cls, **factors: Iterable) -> "ReplicaAxis":
    """Factors in keyword order, e.g. ``of(point=range(4), seed=seeds)``."""
    return cls(tuple((n, tuple(v)) for n, v in factors.items()))

  @property
  def names(self) -> list[str]:
    return [n for n, _ in self.factors]

  @property
  def shape(self) -> tuple[int, ...]:
    return tuple(len(v) for _, v in self.factors)

  @property
  def size(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))

  def levels(self, name: str) -> tuple:
    """The values of factor ``name``."""
    return dict(self.factors)[self._check(name)]

  def labels(self) -> list[dict[str, Any]]:
    """Per replica, ``{factor: value}``."""
    return [dict(zip(self.names, combo)) for combo in
            itertools.product(*(v for _, v in self.factors))]

  def values(self, name: str) -> list:
    """Per replica, the value of factor ``name``."""
    self._check(name)
    return [label[name] for label in self.labels()]

  def index(self, **where: Any) -> np.ndarray:
    """Indices of the replicas whose factors equal ``where`` (in order)."""
    for name in where:
      self._check(name)
    return np.array([i for i, label in enumerate(self.labels())
                     if all(label[k] == v for k, v in where.items())],
                    np.int64)

  def groups(self, name: str) -> dict[Any, np.ndarray]:
    """``{value: replica indices}`` for every value of factor ``name``."""
    return {v: self.index(**{name: v}) for v in self.levels(name)}

  def outer(self, name: str, values: Sequence) -> "ReplicaAxis":
    """This axis repeated for each of ``values`` of a new outermost factor
    (e.g. settings stacked in front of lr x seed)."""
    return ReplicaAxis(((name, tuple(values)),) + self.factors)

  def take(self, tree: PyTree, indices: np.ndarray) -> PyTree:
    """The replicas ``indices`` of a stacked pytree (None leaves stay)."""
    idx = np.asarray(indices)
    return jax.tree.map(lambda x: x[idx], tree)

  def select(self, tree: PyTree, **where: Any) -> PyTree:
    """The replicas of a stacked pytree whose factors equal ``where``."""
    return self.take(tree, self.index(**where))

  def _check(self, name: str) -> str:
    if name not in self.names:
      raise KeyError(f"No replica factor {name!r}; factors are {self.names}.")
    return name


def concat(trees: Sequence[PyTree]) -> PyTree:
  """Stacked pytrees joined along the replica axis (None leaves stay)."""
  return jax.tree.map(lambda *xs: None if xs[0] is None else
                      np.concatenate(xs) if isinstance(xs[0], np.ndarray)
                      else jax.numpy.concatenate(xs), *trees,
                      is_leaf=lambda x: x is None)


__all__ = ["ReplicaAxis", "concat"]
