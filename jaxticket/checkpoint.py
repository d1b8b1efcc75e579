"""Saving and loading pytrees (masks, params, BatchNorm statistics) with orbax.

Arrays keep their replica axis. ``None`` leaves (non-prunable mask entries)
round-trip as ``None``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

PyTree = Any


def save_tree(path: str, tree: PyTree) -> None:
  """Save ``tree`` to directory ``path`` (replacing it), blocking."""
  path = os.path.abspath(path)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(path, jax.device_get(tree), force=True)
  checkpointer.wait_until_finished()
  checkpointer.close()


def load_tree(path: str) -> PyTree:
  """Load a tree saved by :func:`save_tree` as host arrays."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f"No checkpoint at {path}.")
  checkpointer = ocp.StandardCheckpointer()
  try:
    return checkpointer.restore(path)
  finally:
    checkpointer.close()
