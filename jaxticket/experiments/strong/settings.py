"""The ``strong`` config section: strong lottery tickets (Ramanujan et al.
2020, edge-popup; structured, da Cunha et al.) and strong tickets by
construction (random subset sum; Pensia et al. 2020, da Cunha et al.)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import (check_choice, check_distinct,
                                   check_nonempty, check_range, is_number)
from jaxticket.models import supermask
from jaxticket.subnetworks import subset_sum

PARTS = ("edge_popup", "construction")
RULES = tuple(supermask.RULES)  # layerwise, global, units
WEIGHT_INITS = supermask.WEIGHT_INITS
CONSTRUCTIONS = subset_sum.KINDS  # weights, units


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.parts = PARTS
  c.seeds = 2  # seeds per k and width (edge-popup) and of the references
  # --- edge-popup: frozen random weights, trained scores -----------------
  c.rules = ("layerwise", "units")  # top-k per layer / over all / per unit
  # Fractions of weights KEPT (of units, for the `units` rule): the paper's
  # k and the `prune_rate` of its code, which is also the fraction kept.
  c.keep = (0.1, 0.3, 0.5)
  c.widths = (0.5, 1.0, 2.0)  # model.width of each random network
  c.weight_init = "signed_constant"  # or kaiming_normal (frozen weights)
  c.scale_fan = False  # masked kernels times 1/sqrt(k) (the "scaled" inits)
  c.lr = 0.1  # SGD on the scores (edge-popup: 0.1, cosine, momentum 0.9)
  c.weight_decay = 1e-4  # on the scores only (edge-popup's FC config)
  # Trained references at every width: the dense net (weights trained with
  # the train section's recipe) and, at model.width, IMP tickets of this
  # many levels (imp section: prune fraction, rewinding); 0 = dense only.
  c.imp_levels = 5
  # --- construction: approximate a small trained target by subset sum ---
  c.target_hidden = (16,)  # hidden widths of the trained target MLP
  c.target_steps = 0  # its training steps; 0 = train.steps
  # n: random units per target input in each random block (the random
  # network is n times wider than the target, layer by layer), for the
  # unstructured construction (exact subset sums: n <= 24) and the
  # structured one (exact to 2^16 subsets per group, local search beyond).
  c.factors = (4, 8, 12, 16, 20, 24)
  c.unit_factors = (4, 16, 64, 256, 1024)
  c.construct = CONSTRUCTIONS  # prune single weights, or whole units
  c.construct_seeds = 3  # random networks per factor
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """The ``:tiny`` size of the section (called by ``config.shrink``)."""
  s = cfg.strong
  s.seeds = min(s.seeds, 2)
  s.keep = tuple(sorted(s.keep)[-2:])
  s.widths = (cfg.model.width, 2 * cfg.model.width)
  s.rules = tuple(s.rules[:2])
  s.imp_levels = min(s.imp_levels, 1)
  s.target_hidden = (4,)
  s.target_steps = min(s.target_steps or cfg.train.steps, cfg.train.steps)
  s.factors = (2, 4)
  s.unit_factors = (2, 8)
  s.construct_seeds = 2


def validate(cfg: ml_collections.ConfigDict) -> None:
  check_range("task.loss", cfg.task.loss == "ce", cfg.task.loss,
              "`strong` trains with cross-entropy only; use task.loss=ce")
  s = cfg.strong
  check_nonempty("strong.parts", s.parts, "e.g. edge_popup,construction")
  for p in s.parts:
    check_choice("strong.parts", p, PARTS, "part")
  check_range("strong.seeds", s.seeds >= 1, s.seeds, "must be >= 1")
  check_nonempty("strong.rules", s.rules, "e.g. layerwise,units")
  for r in s.rules:
    check_choice("strong.rules", r, RULES, "mask rule")
  check_distinct("strong.rules", s.rules)
  check_nonempty("strong.keep", s.keep, "fractions kept, e.g. 0.1,0.3,0.5")
  for k in s.keep:
    check_range("strong.keep", is_number(k) and 0 < k <= 1, k,
                "each a fraction of weights (units) KEPT in (0, 1], e.g. "
                "0.1,0.3,0.5")
  check_distinct("strong.keep", s.keep)
  check_nonempty("strong.widths", s.widths, "model widths, e.g. 0.5,1,2")
  for w in s.widths:
    check_range("strong.widths", is_number(w) and w > 0, w,
                "each a model.width multiplier > 0, e.g. 0.5,1,2")
  check_distinct("strong.widths", s.widths)
  check_choice("strong.weight_init", s.weight_init, WEIGHT_INITS, "init")
  check_range("strong.lr", is_number(s.lr) and s.lr > 0, s.lr,
              "must be > 0 and finite")
  check_range("strong.weight_decay", s.weight_decay >= 0, s.weight_decay,
              "must be >= 0")
  check_range("strong.imp_levels", s.imp_levels >= 0, s.imp_levels,
              "must be >= 0 (0 = only the dense reference)")
  check_nonempty("strong.target_hidden", s.target_hidden, "e.g. 32 or 32,16")
  for h in s.target_hidden:
    check_range("strong.target_hidden", isinstance(h, int) and h >= 1, h,
                "hidden widths of the target, integers >= 1, e.g. 32")
  check_range("strong.target_steps", s.target_steps >= 0, s.target_steps,
              "must be >= 0 (0 = train.steps)")
  check_nonempty("strong.factors", s.factors, "e.g. 2,4,8,16")
  for n in s.factors:
    check_range("strong.factors", isinstance(n, int) and 1 <= n <= 24, n,
                "candidates per target weight, integers in [1, 24] (the "
                "subset-sum search is exact: 2^n subsets)")
  check_distinct("strong.factors", s.factors)
  check_nonempty("strong.unit_factors", s.unit_factors, "e.g. 4,16,64,256,1024")
  for n in s.unit_factors:
    check_range("strong.unit_factors", isinstance(n, int) and 1 <= n <= 1024,
                n, "units per target input, integers in [1, 1024]")
  check_distinct("strong.unit_factors", s.unit_factors)
  check_nonempty("strong.construct", s.construct, "weights and/or units")
  for c in s.construct:
    check_choice("strong.construct", c, CONSTRUCTIONS, "construction")
  check_range("strong.construct_seeds", s.construct_seeds >= 1,
              s.construct_seeds, "must be >= 1")
