"""Stage-level resume for experiments made of several programs: each
finished stage's JSON result is ``WORKDIR/stages/<name>.json``, and a rerun
reads it instead of recomputing (``strong``, ``theory``; and every training
stage of :func:`jaxticket.experiments.common.train_stage`, which adds
checkpoints inside a stage)."""

from __future__ import annotations

import os
from typing import Any

from jaxticket.core.workdir import Workdir, read_json, write_json


class Stages:
  """Finished stages of one run directory."""

  def __init__(self, wd: Workdir):
    self.wd = wd

  def path(self, name: str) -> str:
    return self.wd.file("stages", f"{name}.json")

  def get(self, name: str) -> Any:
    """The saved result of stage ``name``, or None if it has not finished."""
    return read_json(self.path(name)) if os.path.exists(self.path(name)) \
        else None

  def put(self, name: str, value: Any) -> Any:
    """Save (atomically) and return ``value`` as stage ``name``'s result."""
    write_json(self.path(name), value)
    return value


__all__ = ["Stages"]
