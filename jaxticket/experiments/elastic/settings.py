"""The ``elastic`` config section: elastic lottery tickets (Chen et al.,
NeurIPS 2021) -- a ticket of one depth of a residual family stretched or
squeezed into tickets of other depths."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.models import block_mapping as mapping_lib

#: What is trained next to the transformed ticket (one program per target).
METHODS = ("elastic", "shuffle", "copy_shuffle", "random", "pai", "twin")


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Depths in the unit of model.depth: blocks per stage for resnet1d, total
  # depth 6n+2 for the CIFAR ResNets (20, 32, 56). 0 = the config's depth.
  c.source_depth = 0
  c.target_depths = (3,)
  # "" = build each target's mapping with `strategy`; else one mapping
  # string "src:dst1,dst2;..." (stages separated by '|'), for ONE target.
  c.mapping = ""
  c.strategy = "even"  # even | last | cycle (mapping.STRATEGIES)
  # IMP levels of the source ticket that are transformed (each a density).
  c.levels = (2, 4)
  # Controls trained with the transformed ticket, one program per target:
  # shuffle = its mask shuffled within layers on its weights; random =
  # random masks at its per-layer counts on the target's own theta_0;
  # pai = `pai_method` at its density on the target's theta_0; twin = the
  # transformed ticket again with another data order (its barrier to the
  # ticket is the authors' stability check, change_depth_linear_connect);
  # copy_shuffle = the transformed ticket with the masks of every second
  # or later copy of a replicated block shuffled within layers (the
  # authors' permute_copy control; only for targets that copy blocks).
  c.methods = METHODS
  c.pai_method = "snip"  # a name of `jaxticket pai`'s methods
  c.target_imp = True  # IMP run directly on every target (and the barrier)
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """``:tiny``: one level (``config.shrink`` sets imp.levels)."""
  e = cfg.elastic
  e.levels = tuple(l for l in e.levels if l <= cfg.imp.levels) or (
      cfg.imp.levels,)


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.elastic`` without building anything (the mapping against
  the blocks is checked by ``elastic.check_mappings``)."""
  e = cfg.elastic
  mapping_lib.check_family(cfg.model.name)
  check_range("elastic.source_depth", e.source_depth >= 0, e.source_depth,
              "must be >= 0 (0 = model.depth)")
  if not e.target_depths:
    raise ConfigError("elastic.target_depths is empty: name at least one "
                      "target depth, e.g. --config.elastic.target_depths=3.")
  for d in e.target_depths:
    check_range("elastic.target_depths", isinstance(d, int) and d > 0, d,
                "every target depth must be a positive model.depth value")
  check_choice("elastic.strategy", e.strategy, mapping_lib.STRATEGIES,
               "strategy")
  if e.mapping and len(e.target_depths) != 1:
    raise ConfigError(
        f"elastic.mapping={e.mapping!r} is for one target, but "
        f"elastic.target_depths={tuple(e.target_depths)}; give one target "
        "depth or leave the mapping empty (elastic.strategy builds it).")
  if not e.levels:
    raise ConfigError("elastic.levels is empty: name IMP levels of the "
                      "source ticket, e.g. --config.elastic.levels=2,4.")
  for l in e.levels:
    check_range("elastic.levels", 1 <= l <= cfg.imp.levels, l,
                f"every level must be in [1, imp.levels={cfg.imp.levels}] "
                "(level 0 is the dense net)")
  for m in e.methods:
    check_choice("elastic.methods", m, METHODS, "method")
  if "elastic" not in e.methods:
    raise ConfigError("elastic.methods must include 'elastic' (the "
                      "transformed ticket the others are compared with).")
  if cfg.imp.rewind not in ("init", "step"):
    raise ConfigError(
        f"imp.rewind={cfg.imp.rewind!r}: an elastic ticket carries the "
        "source's rewind weights (theta_0 or theta_k); use imp.rewind=init "
        "or step.")
  if cfg.imp.rewind_step < 0:
    raise ConfigError("imp.rewind_step=-1 (automatic) is not supported by "
                      "elastic; give the step.")
