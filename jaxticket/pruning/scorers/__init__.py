"""Scorers: map a :class:`ScoreContext` to a score per weight.

A score pytree has the structure of the mask: arrays on prunable leaves,
None elsewhere. Higher score = more important = kept longer. Every scorer
takes the same :class:`ScoreContext` (params, mask, key; for data-dependent
methods a loss and a few batches; for SynFlow the model's forward pass) and
uses what it needs. One file per method:

- ``magnitude``: |w| (at init: magnitude pruning at initialization);
- ``random``: uniform random scores;
- ``snip``: |g * w| normalized (Lee et al. 2019);
- ``grasp``: w * Hg at temperature 200, the negation of GraSP's score
  (Wang et al. 2020), so that keeping the largest = GraSP's removal of the
  largest -w * Hg;
- ``synflow``: |w * dR/dw| of the linearized network on an all-ones input
  (Tanaka et al. 2020), exactly rescaled for float32;
- ``grasp_it``: g^2 of the masked network, the criterion of de Jorge et
  al.'s (2021) iterative GraSP variant GRASP-It.

(The package attributes of those names are the modules; the functions are
``SCORERS[name]`` or ``scorers.snip.snip``.) Iterating a scorer over rounds (SynFlow's 100, iterative SNIP) is
:mod:`jaxticket.pruning.rounds`; new scorers register in :data:`SCORERS`.
"""

from __future__ import annotations

import functools
import inspect

from jaxticket.core.checks import check_choice
from jaxticket.pruning.scorers.context import (ScoreContext, Scorer,
                                               normalize, on_prunable)
from jaxticket.pruning.scorers import (grasp, grasp_it, magnitude, random,
                                       snip, synflow)

SCORERS: dict[str, Scorer] = {
    "magnitude": magnitude.magnitude,
    "random": random.random,
    "snip": snip.snip,
    "grasp": grasp.grasp,
    "synflow": synflow.synflow,
    "grasp_it": grasp_it.grasp_it,
}

#: Scorers that read ``ScoreContext.batches`` (their masks depend on data).
DATA_DEPENDENT = ("snip", "grasp", "grasp_it")
#: Scorers that can run inside IMP's pruning step (no data, no forward).
WEIGHT_ONLY = ("magnitude", "random")


def get(name: str, key: str = "imp.scorer", **options) -> Scorer:
  """The scorer called ``name`` (a clear error lists the valid names), with
  the keyword ``options`` it accepts bound (e.g. GraSP's ``temperature``;
  options it does not take are ignored)."""
  check_choice(key, name, SCORERS, "pruning scorer")
  fn = SCORERS[name]
  accepted = inspect.signature(fn).parameters
  bound = {k: v for k, v in options.items() if k in accepted}
  return functools.partial(fn, **bound) if bound else fn


__all__ = ["ScoreContext", "Scorer", "SCORERS", "DATA_DEPENDENT",
           "WEIGHT_ONLY", "get", "normalize", "on_prunable", "magnitude",
           "random", "snip", "grasp", "grasp_it", "synflow"]
