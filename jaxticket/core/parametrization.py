"""Parametrization: which parameters a run trains and which it keeps frozen.

Training weights (IMP, the controls, dynamic sparse training) trains every
parameter; a supermask method (edge-popup, GEM-MINER) trains *scores* while
the random weights stay frozen. The step differentiates only the trainable
leaves and leaves the frozen ones untouched (bit for bit), so a new
parametrization needs no change to the step. Leaves are chosen by path
regex, never by shape (stacked params gain an axis).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import jax

from jaxticket.core.masks import path_str

PyTree = Any

_is_none = lambda x: x is None


@dataclasses.dataclass(frozen=True)
class Parametrization:
  """Parameters whose '/'-joined path matches ``trainable`` are trained.

  ``Parametrization()`` trains everything; ``Parametrization.scores()``
  trains leaves named ``scores`` only (supermasks).

  ``project`` (optional) maps the tree of trained leaves (None elsewhere)
  to its projection onto the feasible set, applied by the step after every
  optimizer update: projected gradient descent, e.g. scores clipped to
  [0, 1] (GEM-MINER, Sreenivasan et al. 2022). None: no projection.

  ``penalty`` (optional) maps the same tree to a scalar added to the
  training loss, so its (sub)gradient reaches the optimizer together with
  the task's, e.g. the L1 norm of soft masks (UGS, Chen et al. 2021: their
  code adds s * sign(m) to the masks' gradients before Adam, which is the
  gradient of s * |m|). None: no penalty. Weight decay stays the
  optimizer's (``HParams``).
  """
  trainable: str = ""  # "" = every leaf
  project: Callable[[PyTree], PyTree] | None = None
  penalty: Callable[[PyTree], jax.Array] | None = None

  @classmethod
  def weights(cls) -> "Parametrization":
    return cls("")

  @classmethod
  def scores(cls, project: Callable[[PyTree], PyTree] | None = None
             ) -> "Parametrization":
    return cls(r"(^|/)scores$", project)

  def flags(self, params: PyTree) -> PyTree:
    """Pytree of Python bools: is the leaf trained?"""
    regex = re.compile(self.trainable)
    return jax.tree_util.tree_map_with_path(
        lambda p, _: bool(regex.search(path_str(p))), params)

  def split(self, params: PyTree) -> tuple[PyTree, PyTree]:
    """(trainable, frozen): two trees shaped like ``params`` holding None
    where the other one holds the leaf."""
    if not self.trainable:
      return params, jax.tree.map(lambda _: None, params)
    flags = self.flags(params)
    keep = lambda want: jax.tree.map(
        lambda p, f: p if f == want else None, params, flags)
    return keep(True), keep(False)


def merge(trainable: PyTree, frozen: PyTree) -> PyTree:
  """Inverse of :meth:`Parametrization.split`."""
  return jax.tree.map(lambda a, b: b if a is None else a, trainable, frozen,
                      is_leaf=_is_none)
