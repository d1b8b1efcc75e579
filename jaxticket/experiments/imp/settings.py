"""The ``imp`` config section: iterative magnitude pruning with rewinding
(Frankle & Carbin 2019; Frankle et al. 2020; Renda et al. 2020)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import check_choice, check_range
from jaxticket.experiments.lmc import settings as lmc_settings
from jaxticket.pruning import STRATEGIES
from jaxticket.pruning.scorers import WEIGHT_ONLY

REWIND_MODES = ("init", "step", "lr", "finetune")
IMP_SCHEDULES = ("iterative", "oneshot")
FINETUNE_SCHEDULES = ("replay", "constant")
AUTO_REWIND = -1  # imp.rewind_step value: choose k by instability analysis


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.levels = 12
  c.prune_fraction = 0.2
  # Frankle & Carbin (2019) prune LeNet's output layer at half the rate.
  # < 0: rank the output layer together with the rest; 0: never prune it.
  c.output_prune_fraction = 0.1
  c.strategy = "global"
  c.schedule = "iterative"
  c.rewind = "init"
  # -1 = automatic (rewind step/lr only): the earliest k of lmc.rewind_steps
  # at which the dense net is stable (lmc.stable_barrier), see lmc.py.
  c.rewind_step = 0
  # imp.rewind=finetune: each level fine-tunes the trained survivors for the
  # level's steps at finetune_lr (0 = finetune_lr_fraction x train.lr),
  # replaying the training schedule (e.g. cosine) from imp.rewind_step
  # ("replay") or at that LR throughout ("constant", Renda et al.'s
  # fine-tuning at the final LR: set finetune_lr to it).
  c.finetune_lr = 0.0
  c.finetune_lr_fraction = 0.1
  c.finetune_schedule = "replay"
  c.scorer = "magnitude"
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.imp`` (and ``cfg.lmc`` when the rewind step is automatic)."""
  i, steps = cfg.imp, cfg.train.steps
  check_range("imp.levels", i.levels >= 0, i.levels, "must be >= 0")
  check_range("imp.prune_fraction", 0 < i.prune_fraction < 1,
              i.prune_fraction,
              "must be in (0, 1), the fraction of remaining weights pruned "
              "per level (0.2 is standard)")
  check_range("imp.output_prune_fraction", i.output_prune_fraction < 1,
              i.output_prune_fraction,
              "must be < 1 (negative: prune with the rest; 0: never)")
  check_choice("imp.strategy", i.strategy, STRATEGIES)
  check_choice("imp.schedule", i.schedule, IMP_SCHEDULES)
  check_choice("imp.rewind", i.rewind, REWIND_MODES)
  # IMP scores trained weights without data (SNIP, GraSP, SynFlow are
  # pruning-at-initialization methods: `jaxticket pai`).
  check_choice("imp.scorer", i.scorer, WEIGHT_ONLY, "IMP scorer")
  check_range("imp.rewind_step", 0 <= i.rewind_step < steps or (
      i.rewind_step == AUTO_REWIND and i.rewind in ("step", "lr")),
              i.rewind_step, f"must be in [0, train.steps={steps}), or -1 "
              "(automatic, with imp.rewind=step or lr)")
  if i.rewind_step == AUTO_REWIND:
    lmc_settings.validate(cfg)
  check_range("imp.finetune_lr", i.finetune_lr >= 0, i.finetune_lr,
              "must be >= 0 (0 = imp.finetune_lr_fraction x train.lr)")
  check_range("imp.finetune_lr_fraction", 0 < i.finetune_lr_fraction <= 1,
              i.finetune_lr_fraction, "must be in (0, 1], the fine-tuning "
              "LR as a fraction of train.lr")
  check_choice("imp.finetune_schedule", i.finetune_schedule,
               FINETUNE_SCHEDULES)
