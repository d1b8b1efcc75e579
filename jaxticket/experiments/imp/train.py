"""``jaxticket train``: dense training of every seed, as one program (IMP
with zero levels; same run directory as ``imp``)."""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxticket.experiments.imp import imp


def command(cfg: ml_collections.ConfigDict, args: Any) -> dict:
  cfg.imp.levels = 0
  return imp.run(cfg, args.workdir, command="train",
                 progress=not args.no_progress)


console = imp.console
