"""The ``sweep`` config section: how a grid is cut into programs."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import check_range


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.max_replicas = 0  # replicas per program (0 = from the memory estimate)
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  check_range("sweep.max_replicas", cfg.sweep.max_replicas >= 0,
              cfg.sweep.max_replicas,
              "must be >= 0 (0 = from a memory estimate)")
