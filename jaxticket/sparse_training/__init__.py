"""Mask updaters: dynamic sparse training inside the compiled step.

Each updater implements :class:`jaxticket.core.updater.MaskUpdater` in one
file: ``static`` keeps the mask fixed (IMP, one-shot pruning, pruning at
initialization, the controls); ``set`` (Mocanu et al. 2018) and ``rigl``
(Evci et al. 2020) drop and regrow at a constant active count; ``gmp`` (Zhu
& Gupta 2017) prunes gradually from dense; ``granet`` (Liu et al. 2021)
prunes gradually with neuroregeneration. :class:`Choice` puts several of
them on one replica axis, :class:`Monitored` logs the gradient norm at each
update, :mod:`sparse_init` holds the sparsity-aware initialization (Evci et
al. 2022). Shared pieces (exact top-k, drop-and-grow, schedules) live in
:mod:`selection`.
"""

from __future__ import annotations

from jaxticket.core.checks import check_choice
from jaxticket.core.updater import MaskUpdater
from jaxticket.sparse_training.choice import Choice, assign, chosen
from jaxticket.sparse_training.gmp import GMP
from jaxticket.sparse_training.granet import GraNet
from jaxticket.sparse_training.monitor import Monitored
from jaxticket.sparse_training.rigl import RigL
from jaxticket.sparse_training.set import SET
from jaxticket.sparse_training.static import Static

UPDATERS = {"static": Static, "set": SET, "rigl": RigL, "gmp": GMP,
            "granet": GraNet}


def get(name: str, **kwargs) -> MaskUpdater:
  """The updater registered as ``name``, built with ``kwargs``."""
  check_choice("sparse.updater", name, UPDATERS, "mask updater")
  return UPDATERS[name](**kwargs)


__all__ = ["MaskUpdater", "Static", "SET", "RigL", "GMP", "GraNet", "Choice",
           "Monitored", "assign", "chosen", "UPDATERS", "get"]
