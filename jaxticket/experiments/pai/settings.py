"""The ``pai`` config section: pruning at initialization (SNIP, GraSP,
SynFlow, random and smart-ratio tickets, ...) with Su et al.'s (NeurIPS
2020) checks on every mask and Ma et al.'s (NeurIPS 2021) conditions."""

from __future__ import annotations

import ml_collections

from jaxticket.core import optim
from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.models import gem_miner

#: Su et al.'s checks, each trained next to every method's mask.
CHECKS = ("shuffle", "reinit", "random_labels", "shuffled_pixels",
          "half_data")
#: Checks that recompute the scores on other data (data-dependent methods).
DATA_CHECKS = ("random_labels", "shuffled_pixels", "half_data")
INITS = ("scored", "fresh")
#: ``pai.imp_workdir`` value that skips the IMP reference.
NO_IMP = "none"


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Method names: jaxticket.experiments.pai.methods.METHODS (`jaxticket pai
  # --help` lists them).
  c.methods = ("random", "magnitude", "snip", "grasp", "synflow",
               "smart_ratio")
  # Fractions of the prunable weights KEPT, each in (0, 1).
  # A method that cannot build a density (the smart ratio below its 30%
  # output layer) skips it, with a note.
  c.densities = (0.1, 0.03, 0.01, 0.001)
  c.seeds = 2  # seeds per (method, density); 0 = use `seeds`
  c.checks = CHECKS
  # Examples the data-dependent scorers see: 10 per class for 10 classes
  # (GraSP's and Su et al.'s samples_per_class=10; Synaptic-Flow draws
  # 10 x classes at random; snip-public one batch of 100).
  c.score_examples = 100
  c.score_balanced = True  # per class (GraSP, Su et al.) or at random
  c.synflow_rounds = 100  # Tanaka et al.: 100 rounds, density d^(k/n)
  c.iterative_rounds = 20  # rounds of the iterative variants (snip_iter)
  c.grasp_temperature = 200.0
  # GraSP scores a copy with Xavier re-drawn Dense kernels, as its code
  # does by default (reinit=True), or the weights that train (False: ours).
  c.grasp_reinit = False
  # Which weights train under a method's mask: `scored` = the ones the
  # scores saw (Lee et al.'s Algorithm 1; Synaptic-Flow, Su et al.);
  # `fresh` = another initialization (namhoonlee/snip-public).
  c.init = "scored"
  # The IMP reference: "" = run `imp` with this config in WORKDIR/imp;
  # "none" = no IMP reference; else an `imp` or `sanity` workdir.
  c.imp_workdir = ""
  c.small_dense = True  # Ma et al.'s condition 2 needs the small-dense net
  # Layer collapse: masks (no training) on a grid of compressions
  # 10^(k * step), k = 0..collapse_points-1.
  c.collapse_points = 17
  c.collapse_step = 0.25
  c.chunk = 0  # replicas per training program (0 = all in one)
  # GEM-MINER (`gem_miner`; Sreenivasan et al. 2022, ksreenivasan/
  # pruning_is_enough hc_iter): scores p in [0, 1] trained over frozen
  # theta_0, then the weights trained under the mask like every method's.
  # The target is each of pai.densities (fraction KEPT; the authors'
  # target_sparsity is the % remaining).
  c.gem_steps = 0  # score-phase SGD steps (0 = train.steps; the paper: equal)
  c.gem_lr = 0.1  # SGD, train.momentum, no warm-up (hc_iter: lr 0.1)
  c.gem_schedule = "cosine"  # hc_iter's lr_policy: cosine_lr
  # L2 penalty lambda * ||p||^2 (1e-4 for ResNet-20 in the paper), applied
  # as coupled weight decay 2 * lambda on the scores only (same gradient).
  c.gem_lambda = 1e-4
  c.gem_freeze_every = 5.0  # epochs between freezes of the smallest p
  # Mask handed to weight training: "flag" = the weights never frozen (the
  # code's unflag_before_finetune=True; exactly the target density) or
  # "rounded" = those with p > 1/2 too (at most the target density).
  c.gem_final = "flag"
  c.gem_collapse = False  # also learn masks on the layer-collapse grid
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """``:tiny`` (tests): few methods, densities and rounds (called by
  ``config.shrink`` with the whole config)."""
  c = cfg.pai
  c.methods = ("random", "snip", "synflow", "smart_ratio")
  c.densities = (0.1, 0.01)
  c.seeds = min(c.seeds, 2) if c.seeds else 0
  c.score_examples = 20
  c.synflow_rounds = 4
  c.iterative_rounds = 3
  c.collapse_points = 5
  c.collapse_step = 0.5
  c.imp_workdir = NO_IMP
  # GEM-MINER (when named in pai.methods): a freeze every 1/4 epoch of
  # MNIST-1D's 28 steps, so the short score phase still freezes.
  c.gem_freeze_every = min(c.gem_freeze_every, 0.25)


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.pai`` (method names: ``pai.validate``, which knows the
  method registry)."""
  p = cfg.pai
  if not p.methods:
    raise ConfigError("pai.methods is empty: name at least one method, e.g. "
                      "--config.pai.methods=snip,synflow.")
  if len(set(p.methods)) != len(p.methods):
    raise ConfigError(f"pai.methods={tuple(p.methods)!r} repeats a method.")
  if not p.densities:
    raise ConfigError("pai.densities is empty: give densities in (0, 1), "
                      "e.g. --config.pai.densities=0.1,0.01.")
  for d in p.densities:
    check_range("pai.densities", isinstance(d, (int, float)) and 0 < d < 1,
                d, "every density (the fraction of prunable weights kept) "
                "must be in (0, 1), e.g. 0.1 = 90% sparsity")
  if len(set(p.densities)) != len(p.densities):
    raise ConfigError(f"pai.densities={tuple(p.densities)!r} repeats a "
                      "density.")
  check_range("pai.seeds", p.seeds >= 0, p.seeds, "must be >= 0 (0 = `seeds`)")
  for c in p.checks:
    check_choice("pai.checks", c, CHECKS, "Su et al. check")
  check_range("pai.score_examples", p.score_examples >= 2, p.score_examples,
              "must be >= 2 (the data-dependent scorers' examples)")
  check_range("pai.synflow_rounds", p.synflow_rounds >= 1, p.synflow_rounds,
              "must be >= 1 (100 in Tanaka et al. 2020)")
  check_range("pai.iterative_rounds", p.iterative_rounds >= 1,
              p.iterative_rounds, "must be >= 1")
  check_range("pai.grasp_temperature", p.grasp_temperature > 0,
              p.grasp_temperature, "must be > 0 (200 in GraSP's code)")
  check_choice("pai.init", p.init, INITS)
  check_range("pai.collapse_points", p.collapse_points >= 0,
              p.collapse_points, "must be >= 0 (0 = no collapse grid)")
  check_range("pai.collapse_step", p.collapse_step > 0, p.collapse_step,
              "must be > 0 (compression exponent step)")
  check_range("pai.chunk", p.chunk >= 0, p.chunk,
              "must be >= 0 (0 = all replicas in one program)")
  check_range("pai.gem_steps", p.gem_steps >= 0, p.gem_steps,
              "must be >= 0 (0 = train.steps)")
  check_range("pai.gem_lr", p.gem_lr > 0, p.gem_lr,
              "must be > 0 (0.1 in the authors' hc_iter configs)")
  check_choice("pai.gem_schedule", p.gem_schedule, optim.SCHEDULES,
               "schedule")
  check_range("pai.gem_lambda", p.gem_lambda >= 0, p.gem_lambda,
              "must be >= 0 (the L2 penalty on the scores; 1e-4 for "
              "ResNet-20)")
  check_range("pai.gem_freeze_every", p.gem_freeze_every > 0,
              p.gem_freeze_every, "must be > 0 (epochs between freezes; 5 "
              "in the paper)")
  check_choice("pai.gem_final", p.gem_final, gem_miner.FINALS,
               "GEM-MINER final mask")
