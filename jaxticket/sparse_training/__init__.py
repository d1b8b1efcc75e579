"""Mask updaters: dynamic sparse training inside the compiled step.

Each updater implements :class:`jaxticket.core.updater.MaskUpdater` in one
file. ``static`` keeps the mask fixed (IMP, one-shot pruning, pruning at
initialization, the controls); SET, RigL, GMP and GraNet come with the
dynamic-sparse-training issue.
"""

from __future__ import annotations

from jaxticket.core.checks import check_choice
from jaxticket.core.updater import MaskUpdater
from jaxticket.sparse_training.static import Static

UPDATERS = {"static": Static}


def get(name: str, **kwargs) -> MaskUpdater:
  """The updater registered as ``name``."""
  check_choice("sparse.updater", name, UPDATERS, "mask updater")
  return UPDATERS[name](**kwargs)


__all__ = ["MaskUpdater", "Static", "UPDATERS", "get"]
