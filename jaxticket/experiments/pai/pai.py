"""Pruning at initialization, with Su et al.'s sanity checks on every mask.

``jaxticket pai`` builds, for every method of ``pai.methods`` (SNIP, GraSP,
SynFlow, random, magnitude, Su et al.'s random and hybrid tickets, ...;
:mod:`jaxticket.experiments.pai.methods`), every density of
``pai.densities`` and every seed, a mask at initialization: all replicas
of one method scored in one compiled, vmapped program (SynFlow's rounds
inside it). Every mask then goes through Su et al.'s (NeurIPS 2020, Sec. 4)
checks, each trained next to it with the same recipe:

- ``shuffle``: the mask permuted within each layer (same layer densities);
- ``reinit``: the mask on a fresh initialization the scores never saw;
- ``random_labels`` / ``shuffled_pixels`` / ``half_data``: the scores
  recomputed on corrupted data or half the data (data-dependent methods
  only; :mod:`jaxticket.experiments.pai.scoring`).

All masks of one shape (methods x densities x seeds x checks, plus the dense
net) train as ONE program on the replica axis (``pai.chunk`` splits it).
References: the dense net, small-dense nets with each density's weight
count (Ma et al.'s condition 2), and the IMP ticket (computed in
``WORKDIR/imp`` or read from ``pai.imp_workdir``). Ma et al.'s (NeurIPS
2021) conditions judge every method's mask at every density with the
sanity check's own ``verdict.judge`` (ticket = the method's mask, random
re-initialization = the ``reinit`` check). Layer collapse (Tanaka et al.
2020): per-layer densities of every mask, and masks on a grid of
compressions up to 10^-4 give each method's largest compression before a
layer is pruned away. Resumes per stage (``stages/``: the masks, each
training chunk, each small-dense net, the collapse grid; ``imp/``: the IMP
reference) and inside a training stage from its newest checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket import data as data_lib
from jaxticket.core import checkpoint
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.checks import ConfigError, check_choice
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.stats import stats
from jaxticket.core.workdir import Workdir, read_json, write_json
from jaxticket.experiments import common, registry
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.pai import methods as methods_lib
from jaxticket.experiments.pai import report, scoring, settings
from jaxticket.experiments.sanity import verdict as verdict_lib
from jaxticket.experiments.summaries import ImpSummary, PaiSummary
from jaxticket.pruning import controls, scorers
from jaxticket.pruning.scorers import synflow as synflow_lib

PyTree = Any

#: Seed offsets of the initializations the scores never saw.
FRESH_OFFSET = 1_000_003
#: Largest log2 of SynFlow's flow R its float32 rescaling handles.
SYNFLOW_LOG2_LIMIT = 245.0


def validate(cfg: ml_collections.ConfigDict) -> None:
  """The whole config for ``pai``: base keys, the ``pai`` section and its
  method names, the sanity thresholds the verdict reads."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  for name in cfg.pai.methods:
    check_choice("pai.methods", name, methods_lib.METHODS, "PaI method")
  if data_lib.is_text(cfg.data.name):  # before any training: one line
    check_synflow_input(cfg.pai.methods, cfg.data.name, True)
  imp_dir = cfg.pai.imp_workdir
  if imp_dir not in ("", settings.NO_IMP):
    read_imp_reference(imp_dir, cfg)  # a clear error if it is missing


def densities_of(cfg: ml_collections.ConfigDict, shapes: dict,
                 paths: list[str]) -> tuple[dict[str, list[float]],
                                            list[dict]]:
  """The densities of ``pai.densities`` each method can build on this model
  (the smart ratio's fixed 30% of the output layer must fit in the budget),
  and the (method, density) pairs skipped with the reason."""
  out, skipped = {}, []
  for m in cfg.pai.methods:
    floor = methods_lib.METHODS[m].min_density(shapes, paths, cfg)
    out[m] = [float(d) for d in cfg.pai.densities if d > floor]
    skipped += [{"method": m, "density": float(d),
                 "why": f"below its smallest buildable density {floor:.5f} "
                        "(the smart ratio keeps 30% of the output layer)"}
                for d in cfg.pai.densities if d <= floor]
    if not out[m]:
      raise ConfigError(
          f"pai.densities={tuple(cfg.pai.densities)!r}: method {m!r} cannot "
          f"build any of them on {cfg.model.name} (its smallest is "
          f"{floor:.5f}: the smart ratio keeps 30% of the output layer out "
          "of the budget); add a larger density or drop the method.")
  return out, skipped


def all_densities(cfg) -> dict[str, list[float]]:
  return {m: [float(d) for d in cfg.pai.densities] for m in cfg.pai.methods}


def seeds_of(cfg: ml_collections.ConfigDict) -> list[int]:
  n = cfg.pai.seeds or cfg.seeds
  return [cfg.seed + i for i in range(n)]


def stable_id(text: str) -> int:
  return zlib.crc32(text.encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------
# Stage 1: masks.


@dataclasses.dataclass
class Inits:
  """Stacked initial states per seed: ``scored`` (theta_0, what the scores
  see), ``fresh`` and ``fresh2`` (initializations the scores never saw)."""
  scored: step_lib.TrainState
  fresh: step_lib.TrainState
  fresh2: step_lib.TrainState


def make_inits(s: common.Setup, seeds: list[int]) -> Inits:
  init = s.trainer.init(loop_lib.replica_keys(seeds))
  fresh = [s.trainer.init(loop_lib.replica_keys(
      [sd + k * FRESH_OFFSET for sd in seeds])) for k in (1, 2)]
  # same data order as theta_0: the settings differ only in weights/mask
  fresh = [f.replace(data_key=init.data_key) for f in fresh]
  return Inits(init, *fresh)


def ticket_and_reinit(cfg: ml_collections.ConfigDict) -> tuple[str, str]:
  """Which initialization a method's mask trains from, and which its
  ``reinit`` check uses (never one the scores saw, never the ticket's)."""
  return ("scored", "fresh") if cfg.pai.init == "scored" else (
      "fresh", "fresh2")


def creation_order(model, input_shape: tuple[int, ...],
                   context: PyTree = None) -> list[str]:
  """Parameter paths in the order a Flax ``init`` creates them (forward
  order), read while ``jax.eval_shape`` traces it: no weights computed (an
  eager init of ResNet-20 took 30 s on a busy 2-core CPU). ``context``: the
  data's shared arrays (a graph set's), if any."""
  seen: list[str] = []

  def init():
    variables = model.init(jax.random.key(0),
                           jnp.zeros((1, *input_shape)), train=False,
                           **step_lib.context_kwargs(context))
    seen.extend(masks_lib.creation_order(variables["params"]))
    return variables

  jax.eval_shape(init)
  return seen


def forward_order(s: common.Setup, mask: PyTree) -> list[str]:
  """Prunable leaf paths from input to output."""
  prunable = set(jax.tree.leaves(masks_lib.map_prunable(
      lambda m, p: p, mask, masks_lib.leaf_paths(mask))))
  return [p for p in creation_order(s.model, tuple(s.data.input_shape),
                                    methods_lib.data_context(s.data))
          if p in prunable]


def mask_variants(cfg: ml_collections.ConfigDict, method) -> list[str]:
  """Scoring-data variants a method's masks are built on."""
  out = ["clean"]
  if method.data_dependent:
    out += [c for c in cfg.pai.checks if c in settings.DATA_CHECKS]
  return out


def build_masks(cfg: ml_collections.ConfigDict, s: common.Setup,
                inits: Inits, seeds: list[int], densities: list[float],
                one_mask: PyTree, paths: list[str], method_name: str,
                variant: str, wd: Workdir | None = None,
                progress: bool = False, tag: str = "") -> PyTree:
  """Stacked masks of one method on one data variant, replicas
  density-major x seed (``ReplicaAxis.of(density=..., seed=...)``). A
  method that trains keeps its stage in ``wd`` (``tag`` names it apart
  from other builds)."""
  method = methods_lib.METHODS[method_name]
  axis = ReplicaAxis.of(density=densities, seed=seeds)
  pos = {sd: i for i, sd in enumerate(seeds)}
  take = np.array([pos[sd] for sd in axis.values("seed")])
  params = jax.tree.map(lambda a: a[take], inits.scored.params)
  stats_ = jax.tree.map(lambda a: a[take], inits.scored.batch_stats)
  keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(
      jax.random.key(sd), stable_id(method_name)), stable_id(f"{d:.10g}"))
                    for d, sd in zip(axis.values("density"),
                                     axis.values("seed"))])
  batches = None
  if method.data_dependent:
    x, y = scoring.stacked(s.data, axis.values("seed"), variant,
                           cfg.pai.score_examples, cfg.pai.score_balanced)
    batches = (jnp.asarray(x), jnp.asarray(y))
  task = methods_lib.MaskTask(
      cfg=cfg, prog=s.trainer.prog, params=params, batch_stats=stats_,
      mask=one_mask, densities=np.array(axis.values("density"), np.float64),
      keys=keys, batches=batches, paths=paths,
      input_shape=tuple(s.data.input_shape), data=s.data,
      seeds=list(axis.values("seed")), variant=variant, workdir=wd,
      progress=progress, tag=tag)
  return jax.device_get(method.build(task))


def check_synflow_input(methods, dataset: str, text: bool) -> None:
  """Refuse SynFlow on a text set: its data-free score feeds an all-ones
  *input* (Tanaka et al. 2020, Sec. 6 / Alg. 1), which for token ids is
  token 1 ([CLS]) at every position, not a data-free input; and its
  conservation argument (Theorem 1, positively homogeneous layers) does
  not hold through LayerNorm and softmax attention. A one-line refusal
  is sounder than a score of undefined meaning."""
  uses = [m for m in methods
          if getattr(methods_lib.METHODS[m], "scorer", None) == "synflow"]
  if uses and text:
    raise ConfigError(
        f"pai.methods: {', '.join(uses)} has no all-ones input on the text "
        f"set data.name={dataset!r} (its examples are token ids; SynFlow's "
        "conservation needs homogeneous layers, which LayerNorm and softmax "
        "attention are not): drop it from the methods.")


def check_synflow_range(s: common.Setup, inits: Inits, one_mask: PyTree
                        ) -> None:
  """Refuse a net whose linearized flow exceeds SynFlow's float32 range."""
  prog = s.trainer.prog
  check_synflow_input(["synflow"], s.data.name,
                      bool(getattr(s.data, "vocab_size", 0)))
  if getattr(s.data, "context", None) is not None:
    raise ConfigError(
        f"pai.methods: synflow has no all-ones input on the graph set "
        f"data.name={s.data.name!r} (its examples are node indices): drop "
        "synflow from the methods.")
  ctx = lambda p, b: scorers.ScoreContext(
      p, one_mask, None, None, (), methods_lib.forward_fn(prog), None, b,
      tuple(s.data.input_shape))
  log2r = np.asarray(loop_lib.vmapped(
      lambda p, b: synflow_lib.log2_flow(ctx(p, b)))(
          inits.scored.params, inits.scored.batch_stats))
  if not np.all(log2r < SYNFLOW_LOG2_LIMIT):
    raise ConfigError(
        f"pai.methods: SynFlow's flow R of this model is 2^{np.max(log2r):.0f}"
        f" at initialization, beyond the 2^{SYNFLOW_LOG2_LIMIT:.0f} its exact "
        "float32 rescaling handles (jaxticket.pruning.scorers.synflow); drop "
        "synflow or use a shallower model.")


def all_masks(cfg, s, wd, inits, seeds, one_mask, paths, progress,
              dens_of: dict[str, list[float]] | None = None
              ) -> dict[str, PyTree]:
  """Every mask the training stage needs, keyed ``method/variant`` (and
  ``method/shuffle``); saved to ``checkpoints/masks`` and reloaded."""
  path = wd.file("checkpoints", "masks")
  names = [f"{m}/{v}" for m in cfg.pai.methods
           for v in mask_variants(cfg, methods_lib.METHODS[m])]
  stages = Stages(wd)
  saved = stages.get("masks")
  if saved is not None and saved["names"] == names:
    return checkpoint.load_tree(path)
  dens_of = dens_of or all_densities(cfg)
  if "synflow" in [getattr(methods_lib.METHODS[m], "scorer", None)
                   for m in cfg.pai.methods]:
    check_synflow_range(s, inits, one_mask)
  bank, timings = {}, {}
  for name in tqdm(names, desc="scoring", disable=not progress, leave=False):
    method, variant = name.split("/")
    t0 = time.time()
    bank[name] = build_masks(cfg, s, inits, seeds, dens_of[method], one_mask,
                             paths, method, variant, wd, progress)
    timings[name] = round(time.time() - t0, 3)
  if "shuffle" in cfg.pai.checks:
    for m in cfg.pai.methods:
      key = jax.random.fold_in(jax.random.key(cfg.seed), stable_id(m + "/sh"))
      clean = bank[f"{m}/clean"]
      n = jax.tree.leaves(clean)[0].shape[0]
      bank[f"{m}/shuffle"] = jax.device_get(loop_lib.vmapped(
          controls.shuffle_within_layers)(jax.random.split(key, n), clean))
  checkpoint.save_tree(path, bank)
  stages.put("masks", {"names": names, "seconds": timings})
  return bank


# --------------------------------------------------------------------------
# Stage 2: training plan and chunks.


def training_plan(cfg: ml_collections.ConfigDict, seeds: list[int],
                  dens_of: dict[str, list[float]] | None = None
                  ) -> list[dict]:
  """One label per trained replica: method, density, seed, setting (the
  method's mask ``pai`` or a check), the mask to use and the init."""
  ticket_init, reinit_init = ticket_and_reinit(cfg)
  dens_of = dens_of or all_densities(cfg)
  plan = [{"method": "dense", "density": 1.0, "seed": sd, "setting": "dense",
           "mask": None, "init": "scored"} for sd in seeds]
  for m in cfg.pai.methods:
    method = methods_lib.METHODS[m]
    for d in dens_of[m]:
      for sd in seeds:
        row = {"method": m, "density": float(d), "seed": sd}
        plan.append({**row, "setting": "pai", "mask": f"{m}/clean",
                     "init": ticket_init})
        for c in cfg.pai.checks:
          if c == "shuffle":
            plan.append({**row, "setting": c, "mask": f"{m}/shuffle",
                         "init": ticket_init})
          elif c == "reinit":
            plan.append({**row, "setting": c, "mask": f"{m}/clean",
                         "init": reinit_init})
          elif method.data_dependent:
            plan.append({**row, "setting": c, "mask": f"{m}/{c}",
                         "init": ticket_init})
  return plan


def chunks(plan: list[dict], size: int) -> list[list[int]]:
  idx = list(range(len(plan)))
  size = size or len(idx)
  return [idx[i:i + size] for i in range(0, len(idx), size)]


def gather_state(s: common.Setup, inits: Inits, seeds: list[int],
                 bank: dict, labels: list[dict], cfg,
                 dens_of: dict[str, list[float]] | None = None) -> tuple:
  """(stacked start state, stacked masks) for the replicas ``labels``."""
  pos = {sd: i for i, sd in enumerate(seeds)}
  dens_of = dens_of or all_densities(cfg)
  states, masks = [], []
  dense_one = masks_lib.ones(loop_lib.tree_index(inits.scored.params, 0),
                             cfg.masks.prunable)
  for lab in labels:
    init = getattr(inits, lab["init"])
    states.append(jax.tree.map(lambda a: a[pos[lab["seed"]]], init))
    if lab["mask"] is None:
      masks.append(jax.device_get(dense_one))
    else:
      r = dens_of[lab["method"]].index(lab["density"]) * len(seeds) + \
          pos[lab["seed"]]
      masks.append(jax.tree.map(lambda a: a[r], bank[lab["mask"]]))
  stack = lambda trees: jax.tree.map(
      lambda *xs: None if xs[0] is None else jnp.stack(xs), *trees,
      is_leaf=lambda x: x is None)
  state, mask = stack(states), stack(masks)
  state = state.replace(
      params=jax.vmap(masks_lib.apply)(state.params, mask),
      step=jnp.zeros_like(state.step), mask=mask)
  return s.trainer.restart(common.copy_tree(state)), mask


def train_chunks(cfg, s, wd, inits, seeds, bank, plan, progress,
                 dens_of: dict[str, list[float]] | None = None) -> dict:
  """Train the plan chunk by chunk, each a resumable stage
  (``common.train_stage``: ``stages/pai_chunk_C.json`` when done,
  checkpoints every ``checkpoint.every_steps`` inside);
  ``{replica: {val, test, diverged}}``."""
  parts = chunks(plan, cfg.pai.chunk)
  out = {}
  for c, idx in enumerate(parts):
    labels = [plan[i] for i in idx]
    state, mask = gather_state(s, inits, seeds, bank, labels, cfg, dens_of)
    hp = optim.stack_hparams([cfg.train.lr] * len(idx),
                             [cfg.train.weight_decay] * len(idx))
    _, row = common.train_stage(
        s, wd, f"pai_chunk_{c}", 0, state, mask, hp, s.trainer,
        progress=progress, seeds=[l["seed"] for l in labels],
        lrs=[cfg.train.lr] * len(idx),
        desc=f"pai chunk {c + 1}/{len(parts)} ({len(idx)} replicas)",
        extra={"chunk": c, "first_replica": idx[0]})
    ev = row["evaluation"]
    bad = {d["replica"] for d in row["diverged"]}
    out.update({i: {"val": float(ev.val_accuracy[j]),
                    "test": float(ev.test_accuracy[j]),
                    "aurc_softmax": float(ev.test_aurc_softmax[j]),
                    "aurc": float(ev.test_aurc[j]),
                    "diverged": j in bad} for j, i in enumerate(idx)})
  return out


# --------------------------------------------------------------------------
# Stage 3: references (small-dense nets, IMP).


def train_small_dense(cfg, s, wd, seeds, one_mask, progress
                      ) -> dict[float, dict]:
  """Per density: a narrower dense net with about that many prunable
  weights (Ma et al.'s small-dense network), width by bisection as in the
  sanity check. ``{density: {"width", "weights", "val", "test"}}``."""
  if not cfg.pai.small_dense:
    return {}
  sanity = registry.load("sanity")
  out = {}
  total = masks_lib.count(one_mask)[1]
  for d in cfg.pai.densities:
    target = int(round(d * total))
    width, count = sanity.small_dense_width(cfg, s.data, target)
    narrow = cfg.copy_and_resolve_references()
    narrow.model.width = width
    narrow.seeds = len(seeds)
    ns = common.setup(narrow)
    state = ns.trainer.init(loop_lib.replica_keys(seeds))
    mask = common.dense_masks(narrow, state.params)
    _, row = common.train_stage(
        ns, wd, f"small_dense_{d:g}", 0, state, mask, ns.hparams, ns.trainer,
        progress=progress,
        desc=f"small dense for density {d:g} (width {width:.3f})",
        extra={"for_density": float(d)})
    ev = row["evaluation"]
    out[float(d)] = {"width": width, "weights": count,
                     "val": [float(v) for v in ev.val_accuracy],
                     "test": [float(v) for v in ev.test_accuracy]}
  return out


def read_imp_reference(path: str, cfg: ml_collections.ConfigDict
                       ) -> dict:
  """The IMP curve of a finished ``imp`` or ``sanity`` workdir:
  ``{"source", "rows": [{"density", "test_accuracy"}]}``."""
  summary = os.path.join(path, "summary.json")
  if not os.path.isfile(summary):
    raise ConfigError(
        f"pai.imp_workdir={path!r}: no finished imp or sanity run there "
        "(summary.json missing). Run `jaxticket imp --workdir DIR` first, "
        "leave pai.imp_workdir empty to compute IMP here, or set it to "
        "'none'.")
  changes = common.task_changes(cfg, path)
  if changes:
    raise ConfigError(
        f"pai.imp_workdir={path!r} was trained with another task: "
        f"{'; '.join(changes)}. Give an imp/sanity run with this task.* "
        "(e.g. task.loss), or leave pai.imp_workdir empty to compute IMP "
        "here.")
  obj = read_json(summary)
  if obj.get("command") in ("imp", "train"):
    rows = [{"density": r["density"], "test_accuracy": r["test_accuracy"]}
            for r in ImpSummary.from_json(obj).levels]
  elif obj.get("command") == "sanity":
    lrs = sorted({r["lr"] for r in obj["rows"]})
    lr = min(lrs, key=lambda x: abs(np.log(x / cfg.train.lr)))
    rows = [{"density": r["density"], "test_accuracy": r["ticket"]}
            for r in obj["rows"] if r["lr"] == lr and "ticket" in r]
  else:
    raise ConfigError(
        f"pai.imp_workdir={path!r} holds a {obj.get('command')!r} run, not "
        "imp or sanity; give an imp or sanity workdir, or 'none'.")
  return {"source": os.path.abspath(path), "rows": rows}


def imp_reference(cfg, wd, seeds, progress) -> dict | None:
  """The IMP ticket curve: read, computed in WORKDIR/imp, or None."""
  where = cfg.pai.imp_workdir
  if where == settings.NO_IMP:
    return None
  if where:
    return read_imp_reference(where, cfg)
  imp_cfg = cfg.copy_and_resolve_references()
  imp_cfg.seeds = len(seeds)
  registry.load("imp").run(imp_cfg, wd.file("imp"), command="imp",
                           progress=progress)
  return read_imp_reference(wd.file("imp"), cfg)


# --------------------------------------------------------------------------
# Stage 4: layer collapse on a grid of compressions (masks only).


def collapse_grid(cfg, s, inits, seeds, one_mask, paths, progress,
                  wd: Workdir | None = None) -> list[dict]:
  """Per method, masks at compressions 10^(k * step), k = 1..points-1
  (density 10^-(k * step)): the smallest and every layer's density. A
  method that learns its masks by training (GEM-MINER) is on the grid only
  with ``pai.gem_collapse`` (one more score phase per grid density)."""
  p = cfg.pai
  grid = [10.0 ** (-k * p.collapse_step) for k in range(1, p.collapse_points)]
  if not grid:
    return []
  shapes = dict(zip(jax.tree.leaves(masks_lib.map_prunable(
      lambda m, q: q, one_mask, masks_lib.leaf_paths(one_mask))),
      [m.shape for m in jax.tree.leaves(one_mask)]))
  out = []
  for name in tqdm(p.methods, desc="layer collapse", disable=not progress,
                   leave=False):
    method = methods_lib.METHODS[name]
    if getattr(method, "trains", False) and not cfg.pai.gem_collapse:
      continue
    floor = method.min_density(shapes, paths, cfg)
    dens = [d for d in grid if d > floor]
    if not dens:
      continue
    masks = build_masks(cfg, s, inits, seeds, dens, one_mask, paths, name,
                        "clean", wd, progress, tag="collapse")
    per_layer = layer_densities(masks, one_mask)  # [R, layers]
    axis = ReplicaAxis.of(density=dens, seed=seeds)
    for d, idx in axis.groups("density").items():
      layers = per_layer[idx]
      out.append({"method": name, "density": float(d),
                  "compression": float(1 / d),
                  "min_layer_density": float(layers.min()),
                  "collapsed": bool((layers == 0).any()),
                  "layers": dict(zip(leaf_names(one_mask),
                                     layers.mean(0).tolist()))})
  return out


def leaf_names(one_mask: PyTree) -> list[str]:
  return list(jax.tree.leaves(masks_lib.map_prunable(
      lambda m, q: q, one_mask, masks_lib.leaf_paths(one_mask))))


def layer_densities(stacked: PyTree, one_mask: PyTree) -> np.ndarray:
  """[R, layers] kept fraction of every prunable leaf (tree order)."""
  leaves = jax.tree.leaves(stacked)
  return np.stack([np.asarray(m).reshape(m.shape[0], -1).mean(1)
                   for m in leaves], axis=1)


def largest_safe_compression(rows: list[dict], method: str) -> float | None:
  """The largest compression of the grid up to which no mask of
  ``method`` (any seed) has pruned a whole layer; None: no grid."""
  mine = sorted((r for r in rows if r["method"] == method),
                key=lambda r: r["compression"])
  safe = None
  for r in mine:
    if r["collapsed"]:
      break
    safe = r["compression"]
  return safe


# --------------------------------------------------------------------------
# Summary.


def criteria(cfg) -> verdict_lib.Criteria:
  return registry.load("sanity").criteria(cfg)


def summarize(cfg, plan, results, bank, one_mask, small_dense, imp, grid,
              seeds, crit, dens_of=None, skipped=()) -> dict:
  lr = float(cfg.train.lr)
  names = leaf_names(one_mask)

  def values(method, density, setting, split):
    return np.array([results[i].get(split, np.nan)
                     for i, lab in enumerate(plan)
                     if lab["method"] == method and lab["setting"] == setting
                     and (method == "dense" or lab["density"] == density)])

  def stat(method, density, setting):
    v, t = (values(method, density, setting, k) for k in ("val", "test"))
    if not len(t):
      return None
    # areas under the coverage-risk curve (core/selective.py) from the
    # softmax and from the task's own confidence (the abstain output under
    # task.loss=gambler), for the benchmark's selective columns; None per
    # seed where not finite
    a = values(method, density, setting, "aurc_softmax")
    own = values(method, density, setting, "aurc")
    return {"test": stats(t), "val": stats(v),
            "test_aurc_softmax": stats(a, np.isfinite(a)),
            "test_aurc": stats(own, np.isfinite(own))}

  dense = stat("dense", 1.0, "dense")
  rows, checks, verdicts = [], [], []
  dens = list(cfg.pai.densities)
  dens_of = dens_of or all_densities(cfg)
  for m in cfg.pai.methods:
    method = methods_lib.METHODS[m]
    per = layer_densities(bank[f"{m}/clean"], one_mask)
    axis = ReplicaAxis.of(density=dens_of[m], seed=seeds)
    for d in dens_of[m]:
      layers = per[axis.index(density=d)]
      settings_ = {st: stat(m, d, st) for st in ("pai", *cfg.pai.checks)}
      settings_ = {k: v for k, v in settings_.items() if v is not None}
      idx = axis.index(density=d)
      others = {v: dict(zip(names, layer_densities(
          bank[f"{m}/{v}"], one_mask)[idx].mean(0).tolist()))
                for v in settings.DATA_CHECKS if f"{m}/{v}" in bank}
      rows.append({"method": m, "density": float(d),
                   "compression": float(1 / d), "settings": settings_,
                   "layer_densities": dict(zip(names,
                                               layers.mean(0).tolist())),
                   "check_layer_densities": others,
                   "collapsed": bool((layers == 0).any()),
                   "data_dependent": method.data_dependent})
      mine = values(m, d, "pai", "test")
      for c in cfg.pai.checks:
        other = values(m, d, c, "test")
        if not len(other):
          continue
        g = verdict_lib.gap(mine, other, crit.margin, crit.alpha, crit.test)
        ok = g["gap"] > crit.margin and (not crit.require_significance
                                         or bool(g["significant"]))
        # "decided": the gap's 95% CI lies wholly above the margin (the
        # sanity check's interval logic, verdict.status); a point gap above
        # it with the CI straddling the margin is within the seeds' noise.
        checks.append({"method": m, "density": float(d), "check": c, **g,
                       "mask_better": bool(ok),
                       "status": verdict_lib.status(g, crit.margin, True)})
      if cfg.pai.small_dense and "reinit" in cfg.pai.checks:
        sd = small_dense[float(d)]
        tab = lambda v, t: {lr: {"val": np.asarray(v), "test": np.asarray(t)}}
        tables = {
            "ticket": tab(values(m, d, "pai", "val"), mine),
            "random_reinit": tab(values(m, d, "reinit", "val"),
                                 values(m, d, "reinit", "test")),
            "small_dense": tab(sd["val"], sd["test"]),
            "dense": tab(values("dense", 1.0, "dense", "val"),
                         values("dense", 1.0, "dense", "test"))}
        v = verdict_lib.judge(tables, 1 - float(d), crit)
        conf = verdict_lib.confidence(tables, 1 - float(d), crit, v,
                                      cfg.sanity.resamples, cfg.seed)
        verdicts.append({"method": m, "density": float(d),
                         "sparsity": 1 - float(d), "class": v["class"],
                         "outcome": conf["outcome"],
                         "possible": conf["possible"],
                         "agreement": conf["agreement"],
                         "conditions": v["conditions"], "gaps": v["gaps"],
                         "small_dense": {k: sd[k] for k in ("width",
                                                            "weights")}})
  su = su_conclusions(cfg, checks)
  collapse = [{"method": m,
               "largest_compression_without_collapse":
                   largest_safe_compression(grid, m),
               "collapsed_at_trained_densities": [
                   r["density"] for r in rows
                   if r["method"] == m and r["collapsed"]]}
              for m in cfg.pai.methods]
  return {"rows": rows, "checks": checks, "su": su, "verdicts": verdicts,
          "collapse": collapse, "collapse_grid": grid, "dense": dense,
          "small_dense": {f"{d:g}": {"width": v["width"],
                                     "weights": v["weights"],
                                     "test": stats(v["test"])}
                          for d, v in small_dense.items()},
          "imp": imp, "methods": list(cfg.pai.methods),
          "densities": [float(d) for d in dens], "seeds": seeds,
          "skipped": list(skipped),
          "checks_run": list(cfg.pai.checks), "init": cfg.pai.init,
          "criteria": dataclasses.asdict(crit), "model": cfg.model.name,
          "dataset": cfg.data.name, "lr": lr,
          "conclusion": conclusion(su, collapse, verdicts, crit)}


def su_conclusions(cfg, checks: list[dict]) -> list[dict]:
  """Per method: at which densities its mask beats its layer-wise shuffle
  (information beyond the layer densities), its re-initialization, and
  every corrupted-data variant (information from the data)."""
  out = []
  for m in cfg.pai.methods:
    mine = [c for c in checks if c["method"] == m]
    by = lambda name, decided=False: sorted(
        c["density"] for c in mine if c["check"] == name and c["mask_better"]
        and (not decided or c.get("status") == verdict_lib.HOLDS))
    ran = lambda name: any(c["check"] == name for c in mine)
    data = [c for c in settings.DATA_CHECKS if ran(c)]
    uses_data = None
    if data:
      dens = sorted({c["density"] for c in mine})
      uses_data = [d for d in dens if all(
          any(c["check"] == k and c["density"] == d and c["mask_better"]
              for c in mine) for k in data)]
    out.append({
        "method": m,
        "beyond_layer_densities": by("shuffle") if ran("shuffle") else None,
        "beyond_layer_densities_decided": (by("shuffle", True)
                                           if ran("shuffle") else None),
        "init_matters": by("reinit") if ran("reinit") else None,
        "uses_data": uses_data,
        "data_dependent": methods_lib.METHODS[m].data_dependent})
  return out


def conclusion(su, collapse, verdicts, crit) -> str:
  """A few plain sentences."""
  parts = []
  for r in su:
    b = r["beyond_layer_densities"]
    bits = []
    if b is not None:
      sure = r.get("beyond_layer_densities_decided") or []
      noisy = [d for d in b if d not in sure]
      bits.append("its mask beats its layer-wise shuffle at "
                  + (", ".join(f"{100 * d:g}%" for d in b) + " density"
                     if b else "no density (the layer densities carry what "
                     "it knows)")
                  + (f" (within the seeds' noise at "
                     f"{', '.join(f'{100 * d:g}%' for d in noisy)}: the 95% "
                     "CI reaches below the margin)" if noisy else ""))
    if r["uses_data"] is not None:
      u = r["uses_data"]
      bits.append("beats every corrupted-data version at " +
                  (", ".join(f"{100 * d:g}%" for d in u) if u else
                   "no density (the data do not matter)"))
    elif not r["data_dependent"]:
      bits.append("is data-free")
    if bits:
      parts.append(f"{r['method']}: " + "; ".join(bits) + ".")
  for c in collapse:
    if c["largest_compression_without_collapse"] is not None:
      parts.append(f"{c['method']} keeps every layer up to compression "
                   f"{c['largest_compression_without_collapse']:.3g}x.")
  jack = [v for v in verdicts if v["class"] == "jackpot"]
  sec = [v for v in verdicts if v["class"] == "secondary"]
  unsure = [v for v in verdicts if v.get("outcome") == "inconclusive"]
  if verdicts:
    parts.append(
        (f"Ma et al.'s jackpot: {', '.join(sorted({v['method'] for v in jack}))}"
         "." if jack else "No PaI mask is a jackpot ticket." if not any(
             "jackpot" in v.get("possible", ()) for v in unsure) else
         "No PaI mask is a decided jackpot ticket.") +
        (f" Secondary prizes: "
         f"{', '.join(sorted({v['method'] for v in sec}))}." if sec else "")
        + (" Inconclusive at these seeds (the intervals still allow "
           "another class): " + ", ".join(
               f"{v['method']} at {100 * v['density']:g}%" for v in unsure)
           + "." if unsure else ""))
  parts.append(f"'Clearly better' = by more than {100 * crit.margin:.1f} "
               "points of test accuracy.")
  return " ".join(parts)


# --------------------------------------------------------------------------
# The command.


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> PaiSummary:
  """The whole experiment; writes the workdir and returns the summary."""
  validate(cfg)  # before touching the workdir
  wd = Workdir(workdir, "pai")
  done = wd.finished(PaiSummary)
  if done is not None:
    wd.claim(cfg, config_lib.default_config())
    tqdm.write(f"{wd.path} holds a finished `pai` run with this config; "
               "nothing recomputed.", file=sys.stderr)
    return done
  t0 = time.time()
  seeds = seeds_of(cfg)
  run_cfg = cfg.copy_and_resolve_references()
  run_cfg.seeds = len(seeds)
  s = common.setup(run_cfg)
  inits = make_inits(s, seeds)
  one_mask = masks_lib.ones(loop_lib.tree_index(inits.scored.params, 0),
                            cfg.masks.prunable)
  paths = forward_order(s, one_mask)
  dens_of, skipped = densities_of(cfg, dict(zip(leaf_names(one_mask), [
      m.shape for m in jax.tree.leaves(one_mask)])), paths)
  for m in cfg.pai.methods:  # checks that need the data (GEM-MINER's freezes)
    check = getattr(methods_lib.METHODS[m], "check", None)
    if check is not None:
      check(cfg, s.data)
  wd.claim(cfg, config_lib.default_config())
  for sk in skipped:
    tqdm.write(f"note: {sk['method']} at density {sk['density']:g} skipped: "
               f"{sk['why']}.", file=sys.stderr)
  timings = {}
  t = time.time()
  bank = all_masks(cfg, s, wd, inits, seeds, one_mask, paths, progress,
                   dens_of)
  timings["masks_s"] = round(time.time() - t, 2)
  plan = training_plan(cfg, seeds, dens_of)
  write_json(wd.file("replicas.json"), [
      {k: v for k, v in lab.items()} for lab in plan])
  t = time.time()
  results = train_chunks(cfg, s, wd, inits, seeds, bank, plan, progress,
                         dens_of)
  timings["training_s"] = round(time.time() - t, 2)
  t = time.time()
  small = train_small_dense(cfg, s, wd, seeds, one_mask, progress)
  timings["small_dense_s"] = round(time.time() - t, 2)
  t = time.time()
  imp = imp_reference(cfg, wd, seeds, progress)
  timings["imp_s"] = round(time.time() - t, 2)
  t = time.time()
  stages = Stages(wd)
  grid = stages.get("collapse")
  if grid is None:
    grid = stages.put("collapse", collapse_grid(cfg, s, inits, seeds,
                                                one_mask, paths, progress,
                                                wd))
  timings["collapse_s"] = round(time.time() - t, 2)
  summary = summarize(cfg, plan, results, bank, one_mask, small, imp, grid,
                      seeds, criteria(cfg), dens_of, skipped)
  summary["replicas_trained"] = len(plan)
  summary["timings_s"] = timings
  summary["wall_time_s"] = round(time.time() - t0, 2)
  summary = PaiSummary(**summary)
  report.write_pai_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(PaiSummary)


def command(cfg: ml_collections.ConfigDict, args) -> PaiSummary:
  """``jaxticket pai``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: PaiSummary) -> str:
  return report.accuracy_table(summary) + "\n\n" + summary.conclusion
