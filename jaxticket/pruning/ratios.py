"""Layer-density rules: per-layer keep ratios from shapes alone (no data).

A rule maps the prunable layers' shapes and a target overall density to one
density per layer whose weighted mean is the target. Used to start sparse
training (RigL/SET/GraNet start from ERK or uniform densities), for random
tickets, and as the "only the ratios matter" control of Su et al. (2020).

- ``uniform``: every layer at the target density.
- ``smart``: Su et al.'s smart ratio (NeurIPS 2020), exactly as their code
  computes it (:func:`smart_ratio_counts`).
- ``erk``: Erdos-Renyi-Kernel (Evci et al., ICML 2020, Sec. 3 "Sparsity
  distribution"): density_l proportional to (sum of the kernel's dims) /
  (product of its dims); one scale epsilon is solved so that the kept count
  hits the target, and a layer whose density would exceed 1 is made dense
  and epsilon re-solved (the loop of google-research/rigl's
  ``sparse_utils.get_sparsities_erdos_renyi``, one layer group at a time).

Densities are floats; :func:`kept_counts` turns them into exact integer
counts that sum to ``round(target * total)``; :func:`counts` gives a rule's
integer counts (the smart ratio's own, truncated as in Su et al.'s code).
*Global* allocation (scores ranked across layers) is no rule of this
module: it needs the scores (``jaxticket.pruning.rounds``).
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


#: Su et al.'s fixed keep ratio of the last linear layer (``--linear_keep_ratio``).
LINEAR_KEEP_RATIO = 0.3
SMART_VARIANTS = ("resnet", "vgg")


def smart_ratio_variant(model_name: str) -> str:
  """``resnet`` for ResNets, ``vgg`` for every other architecture: Su et
  al.'s code divides by l^2 whenever ``args.arch != 'resnet'``."""
  return "resnet" if "resnet" in model_name.lower() else "vgg"


def smart_ratio_counts(sizes: Sequence[int], density: float,
                       variant: str = "resnet",
                       linear_keep_ratio: float = LINEAR_KEEP_RATIO,
                       last_linear: bool = True) -> list[int]:
  """Kept weights per layer by Su et al.'s smart ratio, as
  JingtongSu/sanity-checking-pruning ``pruner/SmartRatio.py`` computes it.

  ``sizes`` lists every prunable Conv/Linear layer in forward order, so
  L = len(sizes) counts the last linear layer too. Layer l (1-based) gets
  the raw ratio (L-l+1)^2 + (L-l+1), divided by l^2 in the ``vgg`` variant.
  The last linear layer (``last_linear``) keeps a fixed
  ``int(linear_keep_ratio * n_L)`` weights, taken out of the budget
  ``int(density * total)``; one scale factor k = budget / sum_l
  int(n_l * raw_l) (the VGG variant divides each term by l^2) sets the
  other ratios. Then, in forward order, a ratio >= 1 is capped at 1 and its
  excess ``int((r - 1) n)`` carried to the following layers: a layer below
  1 absorbs what fits (``int((1 - r) n)``) and passes the rest on; the loop
  stops at the first layer after which nothing is left to carry. Counts are
  ``int(r * n)`` (n when capped). The code's truncations are kept, so the
  total can fall a few weights short of ``density * total``.

  Their code gives *every* ``nn.Linear`` the fixed ratio and divides by zero
  without a convolution; their nets have one Linear, the classifier. For
  MLPs (LeNet) we give the fixed ratio to the last layer only and treat
  hidden linear layers as the code treats convolutions. Their arithmetic is
  float32 (torch tensors), ours float64: a count can differ by one.
  """
  _check_density(density, "density")
  check_choice("smart_ratio.variant", variant, SMART_VARIANTS)
  sizes = [int(n) for n in sizes]
  depth = len(sizes)
  body = depth - 1 if last_linear else depth
  if body < 1:
    raise ConfigError("The smart ratio needs a prunable layer before the "
                      "last linear one.")
  raw = [float((depth - i) ** 2 + (depth - i)) for i in range(depth)]
  div = [float((i + 1) ** 2) if variant == "vgg" else 1.0
         for i in range(depth)]
  total = sum(sizes)
  linear = sizes[-1] if last_linear else 0
  fixed = int(linear * linear_keep_ratio) if last_linear else 0
  goal = int(total * density) - fixed
  if goal <= 0:
    raise ConfigError(
        f"density={density!r} is too small for the smart ratio: its last "
        f"linear layer alone keeps {fixed} weights ({linear_keep_ratio:g} of "
        f"{linear}), more than the {int(total * density)} the density "
        f"allows; use a density above {(fixed + 1) / total:.5f}.")
  test = sum(int(sizes[i] * raw[i] / div[i]) for i in range(body))
  scale = goal / test
  ratio = [raw[i] * scale / div[i] for i in range(body)]
  extra = 0
  for i in range(body):
    n = sizes[i]
    if ratio[i] >= 1:
      extra += int((ratio[i] - 1) * n)
      ratio[i] = 1.0
    else:
      rest = int((1 - ratio[i]) * n)
      if rest >= extra:
        ratio[i] += extra / n
        extra = 0
      else:
        extra -= rest
        ratio[i] = 1.0
    if extra == 0:
      break
  out = [sizes[i] if ratio[i] >= 1 else int(ratio[i] * sizes[i])
         for i in range(body)]
  if last_linear:
    out.append(int(linear_keep_ratio * sizes[-1]))
  return out


def smart_ratio(shapes: Sequence[Shape], density: float,
                variant: str = "resnet",
                linear_keep_ratio: float = LINEAR_KEEP_RATIO,
                last_linear: bool = True) -> list[float]:
  """Su et al.'s smart-ratio densities (:func:`smart_ratio_counts` / n_l)."""
  sizes = [int(np.prod(s)) for s in shapes]
  return [c / n for c, n in zip(smart_ratio_counts(
      sizes, density, variant, linear_keep_ratio, last_linear), sizes)]


RULES: dict[str, Callable[..., list[float]]] = {"uniform": uniform,
                                                "erk": erk,
                                                "smart": smart_ratio}


def counts(name: str, shapes: Sequence[Shape], density: float, **options
           ) -> list[int]:
  """Integer kept counts per layer of rule ``name``: the smart ratio's own
  (truncated as in Su et al.'s code), else :func:`kept_counts` of the
  rule's densities (exactly ``round(density * total)``). ``options`` go to
  the rule (e.g. the smart ratio's ``variant`` and ``last_linear``)."""
  sizes = [int(np.prod(s)) for s in shapes]
  if name == "smart":
    return smart_ratio_counts(sizes, density, **options)
  return kept_counts(sizes, get(name)(shapes, density, **options), density)


def get(name: str, key: str = "ratio") -> Callable[..., list[float]]:
  """The density rule called ``name``; a clear error lists the valid ones."""
  check_choice(key, name, RULES, "layer-density rule")
  return RULES[name]


def leaf_shapes(mask) -> list[tuple[int, ...]]:
  """Shapes of the prunable leaves of ONE replica's mask, in tree order."""
  return [tuple(m.shape) for m in jax.tree.leaves(mask)]


__all__ = ["uniform", "erk", "smart_ratio", "smart_ratio_counts",
           "smart_ratio_variant", "kept_counts", "counts", "RULES", "get",
           "leaf_shapes", "LINEAR_KEEP_RATIO", "SMART_VARIANTS"]
