"""The ``sanity`` config section: Ma et al.'s (NeurIPS 2021) sanity check
(the LR grid on the replica axis, checked levels, verdict thresholds)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import ConfigError, check_choice, check_range


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.lrs = (0.03, 0.1, 0.3)
  c.levels = (5, 8, 12)  # IMP levels that get every control
  c.seeds = 3  # seeds per LR for `sanity` (0 = use `seeds`)
  # Adaptive seeding: while a checked sparsity is inconclusive, rounds of
  # `seeds_per_round` new seeds run there only, at the LRs its open
  # conditions compare, up to `max_seeds` per LR (max_seeds <= seeds: no
  # adaptive rounds).
  c.max_seeds = 15
  c.seeds_per_round = 4
  c.resamples = 1000  # seed-bootstrap resamples of each verdict (0 = none)
  c.tolerance = -1.0  # "similar": within this; < 0 = dataset default
  c.margin = -1.0  # "clearly better": by more; < 0 = dataset default
  c.min_sparsity = 0.6  # condition 1: non-trivial sparsity
  c.test = "welch"  # welch | none
  c.alpha = 0.05
  c.require_significance = False
  c.overlap_top = 0.2  # top-p% weights for the overlap diagnostic
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.sanity`` and what a sanity check needs of ``cfg.imp``."""
  sc = cfg.sanity
  if not sc.lrs or any(lr <= 0 for lr in sc.lrs):
    raise ConfigError(
        f"sanity.lrs={tuple(sc.lrs)!r}: give at least one positive learning "
        "rate, e.g. --config.sanity.lrs=0.01,0.1,0.3.")
  if len(set(sc.lrs)) != len(sc.lrs):
    raise ConfigError(
        f"sanity.lrs={tuple(sc.lrs)!r} repeats a learning rate; its "
        "replicas would count twice in the seed statistics. Give each LR "
        "once (more seeds: --config.sanity.seeds).")
  if cfg.imp.rewind not in ("init", "step"):
    raise ConfigError(
        f"imp.rewind={cfg.imp.rewind!r}: sanity checks judge tickets rewound "
        "to init or to step k; use imp.rewind=init or imp.rewind=step.")
  if cfg.imp.levels < 1:
    raise ConfigError("imp.levels must be >= 1 for a sanity check.")
  n = cfg.imp.levels
  if any(not 1 <= l <= n for l in sc.levels):
    inside = [l for l in sc.levels if 1 <= l <= n] or [n]
    raise ConfigError(
        f"sanity.levels={tuple(sc.levels)!r} is out of range: every checked "
        f"level must be in [1, imp.levels={n}] (the IMP levels run); drop the "
        f"others (e.g. --config.sanity.levels={','.join(map(str, inside))}) "
        "or raise --config.imp.levels.")
  check_range("sanity.seeds", sc.seeds >= 0, sc.seeds,
              "must be >= 0 (0 = use `seeds`)")
  check_range("sanity.max_seeds", sc.max_seeds >= 0, sc.max_seeds,
              "must be >= 0 (at most sanity.seeds: no adaptive rounds)")
  check_range("sanity.seeds_per_round", sc.seeds_per_round >= 1,
              sc.seeds_per_round, "must be >= 1")
  check_range("sanity.resamples", sc.resamples >= 0, sc.resamples,
              "must be >= 0 (0 = no bootstrap)")
  check_choice("sanity.test", sc.test, ("welch", "none"))
  check_range("sanity.alpha", 0 < sc.alpha < 1, sc.alpha, "must be in (0, 1)")
  check_range("sanity.overlap_top", 0 < sc.overlap_top <= 1,
              sc.overlap_top, "must be in (0, 1]")
