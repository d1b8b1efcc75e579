"""The ``dst`` config section: dynamic sparse training (SET, RigL, GMP,
GraNet), sparse training from scratch, the IMP ticket and prune-and-fine-
tune at the same sparsities, steps and seeds (Evci et al. 2020, 2022; Zhu
& Gupta 2017; Liu et al. 2021)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import (ConfigError, check_choice, check_choices,
                                   check_range)
from jaxticket.pruning.ratios import RULES
from jaxticket.sparse_training.sparse_init import INITS

#: Every method ``dst.methods`` may name, and what it is.
METHODS = {
    "static_erk": "random mask with ERK layer densities, trained as is",
    "static_uniform": "random mask with uniform layer densities, as is",
    "set": "SET: drop smallest |w|, regrow at random (from the ERK mask)",
    "rigl": "RigL: drop smallest |w|, regrow by |gradient| (ERK start)",
    "gmp": "gradual magnitude pruning from dense (Zhu & Gupta)",
    "granet": "GraNet dense-to-sparse: global GMP + neuroregeneration",
    "granet_s2s": "GraNet sparse-to-sparse (ERK start at "
                  "dst.granet_initial_density)",
    "scratch": "the ticket's mask on a fresh init (Evci et al.'s scratch)",
    "scratch_sai": "scratch with the sparsity-aware init",
    "ticket": "the IMP ticket: its mask on theta_0 (theta_k with "
              "imp.rewind=step)",
    "finetune": "prune-and-fine-tune: IMP with imp.rewind=finetune",
}


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.methods = tuple(METHODS)
  # IMP levels whose sparsity every method is trained at (the ticket's
  # exact kept count is every method's target).
  c.levels = (4, 8)
  c.distribution = "erk"  # layer densities of the random sparse starts
  # Init of the methods that start sparse from a random init (static_*,
  # set, rigl, granet_s2s): sparsity_aware (Evci et al. 2022) or standard.
  c.sparse_init = "sparsity_aware"
  c.update_every = 100  # Delta T: optimizer steps between mask updates
  c.drop_fraction = 0.3  # RigL/SET alpha, cosine-decayed to 0 at end
  c.end_fraction = 0.75  # RigL/SET: last update at this fraction of steps
  c.prune_start_fraction = 0.1  # GMP/GraNet: gradual pruning from ...
  c.prune_end_fraction = 0.6  # ... to these fractions of train.steps
  c.gmp_ratio = "uniform"  # GMP's per-layer final densities (Zhu & Gupta)
  c.death_rate = 0.5  # GraNet: regeneration rate, cosine-decayed to ...
  c.death_rate_min = 0.005  # ... this at train.steps (GraNet's code)
  c.granet_initial_density = 0.5  # granet_s2s start (GraNet's scripts)
  c.imp_workdir = ""  # an earlier `imp` run to take the tickets from
  c.finetune_workdir = ""  # an earlier `imp` run with imp.rewind=finetune
  c.eval_every = 0  # 0 = train.steps // 20
  c.grad_examples = 1000  # fixed training examples for the gradient norm
  c.alphas = 11  # interpolation points for the barriers (LMC)
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.dst`` and what it needs of ``cfg.imp``."""
  d, steps = cfg.dst, cfg.train.steps
  check_choices("dst.methods", d.methods, METHODS, "dst method")
  check_range("dst.levels", len(d.levels) >= 1 and all(
      int(l) >= 1 for l in d.levels), tuple(d.levels),
              "one or more IMP levels >= 1 (their sparsities are compared)")
  check_choice("dst.distribution", d.distribution, RULES,
               "layer-density rule")
  check_choice("dst.gmp_ratio", d.gmp_ratio, RULES, "layer-density rule")
  check_choice("dst.sparse_init", d.sparse_init, INITS, "sparse init")
  check_range("dst.update_every", d.update_every >= 1, d.update_every,
              "must be >= 1 (optimizer steps between mask updates)")
  check_range("dst.drop_fraction", 0 <= d.drop_fraction < 1,
              d.drop_fraction, "must be in [0, 1), the fraction of each "
              "layer's active weights RigL/SET drop and regrow")
  check_range("dst.end_fraction", 0 < d.end_fraction <= 1, d.end_fraction,
              "must be in (0, 1], a fraction of train.steps")
  check_range("dst.prune_start_fraction", 0 <= d.prune_start_fraction < 1,
              d.prune_start_fraction, "must be in [0, 1)")
  check_range("dst.prune_end_fraction",
              d.prune_start_fraction < d.prune_end_fraction < 1,
              d.prune_end_fraction, "must be in (dst.prune_start_fraction="
              f"{d.prune_start_fraction}, 1): pruning ends before training")
  start = round(d.prune_start_fraction * steps)
  end = round(d.prune_end_fraction * steps)
  check_range("dst.prune_end_fraction", end > start, d.prune_end_fraction,
              f"leaves no step between start {start} and end {end} of "
              f"train.steps={steps}")
  check_range("dst.death_rate", 0 <= d.death_rate < 1, d.death_rate,
              "must be in [0, 1)")
  check_range("dst.death_rate_min", 0 <= d.death_rate_min <= d.death_rate,
              d.death_rate_min, f"must be in [0, dst.death_rate="
              f"{d.death_rate}]")
  check_range("dst.granet_initial_density",
              0 < d.granet_initial_density < 1, d.granet_initial_density,
              "must be in (0, 1)")
  check_range("dst.eval_every", d.eval_every >= 0, d.eval_every,
              "must be >= 0 (0 = train.steps // 20)")
  check_range("dst.grad_examples", d.grad_examples >= 1, d.grad_examples,
              "must be >= 1")
  check_range("dst.alphas", d.alphas >= 3, d.alphas,
              "must be >= 3 (0 and 1 are the endpoints)")
  if cfg.imp.rewind not in ("init", "step"):
    raise ConfigError(
        f"imp.rewind={cfg.imp.rewind!r}: dst compares the ticket retrained "
        "from init or step k (imp.rewind=init or step) with prune-and-fine-"
        "tune (the `finetune` method runs its own IMP with rewind=finetune).")
  check_range("imp.rewind_step", cfg.imp.rewind_step >= 0,
              cfg.imp.rewind_step, "dst needs a fixed rewind step (the "
              "automatic -1 is chosen inside the IMP run; run `jaxticket "
              "lmc` or `imp` first and pass the step it chose)")
  if "finetune" in d.methods and cfg.imp.finetune_schedule != "replay":
    raise ConfigError(
        f"imp.finetune_schedule={cfg.imp.finetune_schedule!r}: dst trains "
        "the `finetune` method in the same program as the others, which "
        "needs the training schedule replayed; use "
        "imp.finetune_schedule=replay (or drop finetune from dst.methods).")


def eval_every(cfg: ml_collections.ConfigDict) -> int:
  """Steps between evaluations of the dst program."""
  return int(cfg.dst.eval_every) or max(1, cfg.train.steps // 20)
