"""Block mappings between depths of a residual family of models/resnets.py
(Chen et al., NeurIPS 2021, "The Elastic Lottery Ticket Hypothesis", Sec. 3:
Elastic Ticket Transformations).

A residual network of the family has S stages of n blocks each; the first
block of a stage (block 0) may change resolution and width and is never
replicated or dropped. A *stage mapping* says, for each source block i,
which target blocks j1, j2, ... receive a copy of it: ``"0:0;1:1,2;2:3,4"``
(the string syntax of the authors' code, lottery/branch/change_depth.py).
Source blocks that are named nowhere are dropped (squeezing); a block
named for several targets is replicated (stretching). A *mapping* is one
stage mapping per stage, written ``"A|B|C"``; a single stage mapping is
used for every stage (the authors' CIFAR ResNets).

:func:`transform` applies a mapping to any pytree keyed like the model's
variables (params, BatchNorm statistics, masks; leaves may carry a replica
axis): the stem (``ConvBN_0``) and the head are copied, target block j of
stage s becomes source block i of stage s. Nothing is computed, so the
mask and the weights move bit for bit.

Plain (VGG-style) nets: the authors' code also maps VGG conv layers within
a stage, but a copied plain layer sits on the main path (no identity
around it), so it changes the function instead of refining it, and our
registry's VGGs have fixed layer plans. :func:`check_family` refuses them
with a one-line error. The plain counterpart of a residual family
(``model.residual=False``, the same ``BasicBlock`` names without skips) is
mapped like the residual net: that is the way to measure what the mapping
does to a plain net.
"""

from __future__ import annotations

import re
from typing import Any

from jaxticket.core.checks import ConfigError

PyTree = Any
#: One stage: source block -> target blocks (in order).
StageMapping = dict[int, tuple[int, ...]]

#: Models whose depth knob (``model.depth``) changes blocks per stage.
FAMILIES = {"resnet1d": "model.depth = residual blocks per stage (2 stages)",
            "resnet20": "model.depth = total depth 6n+2 (3 stages of n)",
            "resnet32": "model.depth = total depth 6n+2 (3 stages of n)",
            "resnet56": "model.depth = total depth 6n+2 (3 stages of n)",
            "resnet110": "model.depth = total depth 6n+2 (3 stages of n)"}

#: Named strategies (:func:`strategy_mapping`), with what they do in words.
STRATEGIES = {
    "even": "spread the target's blocks 1..m-1 evenly over the source's "
            "blocks 1..n-1 (stretch: each block copied next to itself, "
            "e.g. 0:0;1:1,2;2:3,4 as in the authors' example; squeeze: "
            "keep every k-th block)",
    "last": "stretch: copy the stage's last block into the added blocks; "
            "squeeze: drop the stage's last blocks",
    "cycle": "stretch: repeat the stage's blocks 1..n-1 in order "
             "(1,2,..,n-1,1,2,..); squeeze: drop the stage's last blocks",
}

_BLOCK = re.compile(r"^BasicBlock_(\d+)$")


def check_family(model_name: str, key: str = "model.name") -> None:
  """Refuse a model whose depth cannot be changed block-wise."""
  if model_name in FAMILIES:
    return
  why = ("a plain (VGG-style) net has no residual blocks: a copied layer "
         "would sit on the main path and change the function, and its layer "
         "plan is fixed" if model_name.startswith("vgg") else
         "its depth is not a block count of a residual family")
  raise ConfigError(
      f"{key}={model_name!r} cannot be stretched or squeezed ({why}); "
      f"elastic supports {', '.join(FAMILIES)} (e.g. --config "
      "configs/elastic_mnist1d_resnet1d.py).")


def parse_stage(text: str, key: str = "elastic.mapping") -> StageMapping:
  """``"0:0;1:1,2"`` -> ``{0: (0,), 1: (1, 2)}``; a one-line ConfigError
  names the bad part."""
  out: StageMapping = {}
  for part in text.split(";"):
    src, sep, dsts = part.strip().partition(":")
    try:
      if not sep:
        raise ValueError
      i = int(src)
      js = tuple(int(j) for j in dsts.split(","))
    except ValueError:
      raise ConfigError(
          f"{key}={text!r}: cannot read {part.strip()!r}; write "
          "'src:dst1,dst2;...' with block numbers, e.g. '0:0;1:1,2;2:3,4' "
          "(stages separated by '|').") from None
    if i in out:
      raise ConfigError(f"{key}={text!r} lists source block {i} twice; put "
                        f"all its targets in one entry ({i}:a,b).")
    out[i] = js
  return out


def parse(text: str, stages: int, key: str = "elastic.mapping"
          ) -> tuple[StageMapping, ...]:
  """A mapping string for ``stages`` stages: ``"A|B|..."`` (one per stage)
  or one stage mapping used for every stage."""
  parts = text.split("|")
  if len(parts) not in (1, stages):
    raise ConfigError(
        f"{key}={text!r} has {len(parts)} stage mappings but the model has "
        f"{stages} stages; give one (used for every stage) or {stages}, "
        "separated by '|'.")
  maps = [parse_stage(p, key) for p in parts]
  return tuple(maps * stages if len(maps) == 1 else maps)


def format_mapping(mapping: tuple[StageMapping, ...]) -> str:
  """The string of a mapping (one stage mapping when all stages agree)."""
  stage = lambda m: ";".join(f"{i}:{','.join(map(str, js))}"
                             for i, js in sorted(m.items()))
  texts = [stage(m) for m in mapping]
  return texts[0] if len(set(texts)) == 1 else "|".join(texts)


def strategy_mapping(strategy: str, n_src: int, n_dst: int) -> StageMapping:
  """The stage mapping of a named strategy from ``n_src`` to ``n_dst``
  blocks per stage (block 0 always to block 0). Equal depths give the
  identity for every strategy."""
  if strategy not in STRATEGIES:
    raise ConfigError(f"elastic.strategy={strategy!r} is unknown; choose "
                      f"one of {', '.join(STRATEGIES)}.")
  if n_dst > 1 and n_src < 2:
    raise ConfigError(
        f"cannot stretch a stage of {n_src} block to {n_dst}: block 0 "
        "(the downsampling block) is never replicated; use a source with "
        "at least 2 blocks per stage.")
  rest = n_src - 1
  src_of = {}
  for t in range(1, n_dst):  # the source block of target block t
    if strategy == "even":
      src_of[t] = 1 + (t - 1) * rest // (n_dst - 1)
    elif strategy == "last":
      src_of[t] = min(t, n_src - 1)
    else:  # cycle
      src_of[t] = 1 + (t - 1) % rest
  out: StageMapping = {0: (0,)}
  for t, i in src_of.items():
    out[i] = out.get(i, ()) + (t,)
  return out


def check(mapping: tuple[StageMapping, ...], n_src: int, n_dst: int,
          key: str = "elastic.mapping") -> None:
  """Every target block 1..n_dst-1 of every stage is filled exactly once
  from an existing source block; block 0 maps to block 0 only."""
  for s, m in enumerate(mapping):
    filled: dict[int, int] = {}
    for i, js in m.items():
      if not 0 <= i < n_src:
        raise ConfigError(
            f"{key}: stage {s} maps source block {i}, but the source has "
            f"blocks 0..{n_src - 1} per stage.")
      for j in js:
        if not 0 <= j < n_dst:
          raise ConfigError(
              f"{key}: stage {s} maps to target block {j}, but the target "
              f"has blocks 0..{n_dst - 1} per stage.")
        if j in filled:
          raise ConfigError(
              f"{key}: stage {s} fills target block {j} twice (from "
              f"source blocks {filled[j]} and {i}).")
        filled[j] = i
    if m.get(0) != (0,) or filled.get(0, 0) != 0:
      raise ConfigError(
          f"{key}: stage {s} must map block 0 to block 0 only (the first, "
          "downsampling block of a stage is kept, never replicated); "
          "start the stage with '0:0'.")
    missing = sorted(set(range(n_dst)) - set(filled))
    if missing:
      raise ConfigError(
          f"{key}: stage {s} leaves target block(s) {missing} empty; every "
          f"target block 0..{n_dst - 1} needs a source block.")


def block_sources(mapping: tuple[StageMapping, ...], n_src: int, n_dst: int
                  ) -> dict[int, int]:
  """Global target block index -> global source block index."""
  out = {}
  for s, m in enumerate(mapping):
    for i, js in m.items():
      for j in js:
        out[s * n_dst + j] = s * n_src + i
  return out


def copies(mapping: tuple[StageMapping, ...], n_dst: int) -> list[str]:
  """Names of the target blocks that are a second or later copy of a
  source block (the ones the authors' ``permute_copy`` option perturbs)."""
  out = []
  for s, m in enumerate(mapping):
    for js in m.values():
      out += [f"BasicBlock_{s * n_dst + j}" for j in js[1:]]
  return sorted(out, key=lambda name: int(name.split("_")[1]))


def transform(tree: dict, mapping: tuple[StageMapping, ...], n_src: int,
              n_dst: int, like: dict) -> dict:
  """``tree`` (keyed like the source model's variables) mapped to the keys
  of ``like`` (the target's): blocks per :func:`block_sources`, every other
  key (stem, head) copied. Leaves are the source's own arrays (no copy, no
  arithmetic); their shapes must match ``like``'s."""
  sources = block_sources(mapping, n_src, n_dst)
  out = {}
  for name in like:
    hit = _BLOCK.match(name)
    src = f"BasicBlock_{sources[int(hit.group(1))]}" if hit else name
    if src not in tree:
      raise ConfigError(f"the source network has no {src!r} for target "
                        f"{name!r}; do the source and target belong to one "
                        "family (same model.name, width)?")
    out[name] = tree[src]
  return out


def block_counts(tree: dict, stages: int) -> int:
  """Blocks per stage of a variables tree with ``stages`` stages."""
  n = sum(1 for name in tree if _BLOCK.match(name))
  if n % stages:
    raise ValueError(f"{n} blocks do not split into {stages} stages.")
  return n // stages


__all__ = ["FAMILIES", "STRATEGIES", "StageMapping", "check_family",
           "parse_stage", "parse", "format_mapping", "strategy_mapping",
           "check", "block_sources", "copies", "transform", "block_counts"]
