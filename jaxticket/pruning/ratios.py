"""Layer-density rules: per-layer keep ratios from shapes alone (no data).

A rule maps the prunable layers' shapes and a target overall density to one
density per layer whose weighted mean is the target. Used to start sparse
training (RigL/SET/GraNet start from ERK or uniform densities), for random
tickets, and as the "only the ratios matter" control of Su et al. (2020).

- ``uniform``: every layer at the target density.
- ``erk``: Erdos-Renyi-Kernel (Evci et al., ICML 2020, Sec. 3 "Sparsity
  distribution"): density_l proportional to (sum of the kernel's dims) /
  (product of its dims); one scale epsilon is solved so that the kept count
  hits the target, and a layer whose density would exceed 1 is made dense
  and epsilon re-solved (the loop of google-research/rigl's
  ``sparse_utils.get_sparsities_erdos_renyi``, one layer group at a time).

Densities are floats; :func:`kept_counts` turns them into exact integer
counts that sum to ``round(target * total)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np

from jaxticket.core.checks import ConfigError, check_choice

Shape = Sequence[int]


def _check_density(density: float, key: str) -> None:
  if not 0.0 < density <= 1.0:
    raise ConfigError(f"{key}={density!r}: a density must be in (0, 1] "
                      "(the fraction of prunable weights kept).")


def uniform(shapes: Sequence[Shape], density: float) -> list[float]:
  """Every layer keeps ``density`` of its weights."""
  _check_density(density, "density")
  return [float(density)] * len(shapes)


def erk(shapes: Sequence[Shape], density: float,
        power_scale: float = 1.0) -> list[float]:
  """Erdos-Renyi-Kernel densities (Evci et al. 2020).

  The raw score of a layer with kernel shape (d_1, ..., d_n) is
  ``(sum_i d_i / prod_i d_i) ** power_scale`` (``power_scale=0`` gives
  uniform). Non-dense layers get ``eps * raw``; ``eps`` spends the budget
  ``density * total - (weights of dense layers)``. While the largest
  ``eps * raw`` exceeds 1, the layers with the largest raw score become
  dense and ``eps`` is re-solved.
  """
  _check_density(density, "density")
  sizes = np.array([np.prod(s) for s in shapes], np.float64)
  raw = np.array([(np.sum(s) / np.prod(s)) ** power_scale for s in shapes],
                 np.float64)
  dense = np.zeros(len(shapes), bool)
  budget_total = density * sizes.sum()
  while True:
    budget = budget_total - sizes[dense].sum()
    divisor = (raw * sizes)[~dense].sum()
    if divisor <= 0:  # every layer dense: only possible at density 1
      break
    eps = budget / divisor
    if (eps * raw[~dense]).max() <= 1.0 + 1e-12:
      break
    dense |= (raw == raw[~dense].max()) & ~dense
  out = np.where(dense, 1.0, np.minimum(1.0, eps * raw) if divisor > 0
                 else 1.0)
  return [float(d) for d in out]


def kept_counts(sizes: Sequence[int], densities: Sequence[float],
                density: float | None = None) -> list[int]:
  """Integer kept counts per layer: ``floor(d_l * n_l)``, then the weights
  lost to flooring handed out one each to the layers with the largest
  remainders (never beyond a layer's size), so the total is exactly
  ``round(density * sum(sizes))`` (``density`` defaults to the weighted mean
  of ``densities``)."""
  sizes_a = np.asarray(sizes, np.int64)
  exact = np.asarray(densities, np.float64) * sizes_a
  if density is None:
    density = float(exact.sum() / sizes_a.sum())
  target = int(round(density * sizes_a.sum()))
  counts = np.minimum(np.floor(exact + 1e-9).astype(np.int64), sizes_a)
  order = np.argsort(-(exact - counts), kind="stable")
  short = target - int(counts.sum())
  for i in order:
    if short <= 0:
      break
    if counts[i] < sizes_a[i]:
      counts[i] += 1
      short -= 1
  return [int(c) for c in counts]


RULES: dict[str, Callable[..., list[float]]] = {"uniform": uniform,
                                                "erk": erk}


def get(name: str, key: str = "ratio") -> Callable[..., list[float]]:
  """The density rule called ``name``; a clear error lists the valid ones."""
  check_choice(key, name, RULES, "layer-density rule")
  return RULES[name]


def leaf_shapes(mask) -> list[tuple[int, ...]]:
  """Shapes of the prunable leaves of ONE replica's mask, in tree order."""
  return [tuple(m.shape) for m in jax.tree.leaves(mask)]


__all__ = ["uniform", "erk", "kept_counts", "RULES", "get", "leaf_shapes"]
