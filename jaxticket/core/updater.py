"""The MaskUpdater interface: changes to the mask inside the compiled loop.

IMP, one-shot pruning, pruning at initialization and the controls keep the
mask fixed for a run (``None`` / the ``static`` updater). Dynamic sparse
training (SET, RigL, GraNet, gradual magnitude pruning) changes it every so
many steps: the step calls :meth:`MaskUpdater.update` *after* the optimizer
step (PyTorch's RigL/GraNet order: ``optimizer.step()`` then the mask
step), under ``lax.cond`` so that nothing is computed on other steps, and
per replica (replicas may be at different steps). Weights the update
regrows start at zero with zero optimizer moments (Evci et al. 2020, Sec. 3).
Implementations live in :mod:`jaxticket.sparse_training`.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

PyTree = Any


class MaskUpdater(Protocol):
  """A mask-update rule for ONE replica (pure; vmapped by the loop)."""

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    """The updater's own state (e.g. counters); ``()`` if none."""
    ...

  def is_update_step(self, step: jax.Array) -> jax.Array:
    """Whether the mask changes after the optimizer step ``step`` (traced
    bool scalar)."""
    ...

  def update(self, step: jax.Array, params: PyTree, grads: PyTree,
             mask: PyTree, state: PyTree, key: jax.Array
             ) -> tuple[PyTree, PyTree]:
    """(new mask, new state). ``grads`` are this step's *dense* gradients
    (not masked; None on frozen leaves); ``params`` are after the
    optimizer step, still under the old mask."""
    ...


def is_static(updater: MaskUpdater | None) -> bool:
  """Whether ``updater`` never changes the mask (the step then compiles no
  update at all: static training is exactly the fixed-mask program)."""
  return updater is None or getattr(updater, "static", False)
