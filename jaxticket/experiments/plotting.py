"""What every report shares: matplotlib without a display (imported at the
first plot), the density axis, number formats."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


@functools.cache
def pyplot() -> Any:
  """matplotlib.pyplot on the Agg backend, imported at the first plot
  (0.25 s that ``jaxticket train``, which draws none, does not pay)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot
  return matplotlib.pyplot


class _LazyPyplot:
  """``plt.subplots(...)`` etc., importing pyplot on first use."""

  def __getattr__(self, name: str) -> Any:
    return getattr(pyplot(), name)


plt = _LazyPyplot()


def density_axis(ax) -> None:
  """Log-scale 'weights remaining (%)' axis, sparsest to the right, with
  plain tick labels."""
  ax.set_xscale("log")
  lo, hi = sorted(ax.dataLim.intervalx)
  ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1)
           if lo / 1.2 <= t <= hi * 1.2]
  ax.set_xticks(ticks)
  ax.set_xticklabels([f"{t:g}" for t in ticks])
  ax.minorticks_off()
  ax.set_xlim(hi * 1.15, lo / 1.15)  # inverted: sparser to the right
  ax.set_xlabel("weights remaining (%)")


def pct(x: float | None) -> str:
  return "—" if x is None else f"{100 * x:.2f}"


def mean_std(stat: dict) -> str:
  return f"{pct(stat['mean'])} ± {pct(stat['std'])}"


def fmt(x: float | None, scale: float = 100, signed: bool = False) -> str:
  if x is None or (isinstance(x, float) and np.isnan(x)):
    return "—"
  return f"{scale * x:+.2f}" if signed else f"{scale * x:.2f}"


__all__ = ["plt", "density_axis", "pct", "mean_std", "fmt"]
