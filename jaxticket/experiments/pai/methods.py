"""The methods ``jaxticket pai`` compares: name -> how its masks are built.

A method builds the masks of R replicas at once from a :class:`MaskTask`
(each replica's initialization, target density, PRNG key and scoring
batch). Every entry here is a :class:`ScoredMethod`: a scorer
(:mod:`jaxticket.pruning.scorers`), an allocation (``global``: scores
ranked across all prunable layers; or a layer-density rule of
:mod:`jaxticket.pruning.ratios` whose per-layer counts are kept within
each layer) and a number of rounds (:mod:`jaxticket.pruning.rounds`), all
replicas scored in one compiled, vmapped program. A method of another kind
implements :class:`MaskMethod` and adds one entry to :data:`METHODS`; the
checks, training and report take it as is: ``gem_miner``
(:mod:`jaxticket.experiments.pai.gem`) learns its masks by training scores
over frozen weights through the platform's Parametrization and a mask
updater.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import step as step_lib
from jaxticket.core.task import mean_loss
from jaxticket.experiments.pai import gem
from jaxticket.pruning import controls, ratios, rounds, scorers

PyTree = Any


@dataclasses.dataclass
class MaskTask:
  """What a method is given to build the masks of R replicas.

  Attributes:
    cfg: the run's config (``cfg.pai`` holds the methods' knobs).
    prog: the training program (model, task, prunable rule).
    params, batch_stats: stacked [R] initial weights and BN statistics
      (the weights the scores see).
    mask: ONE replica's dense mask (the structure; None = not prunable).
    densities: [R] target densities (fraction of prunable weights kept).
    keys: [R] PRNG keys.
    batches: ``(x [R, n, ...], y [R, n])`` normalized scoring examples per
      replica, or None for data-free methods.
    paths: prunable leaf paths in forward (input-to-output) order.
    input_shape: one example's shape.
    data: the dataset (a method that trains, e.g. a learned mask, builds
      its own ``Trainer(prog._replace(parametrization=...), data)``).
    seeds: [R] the replicas' seeds (labels of a training method's metric
      rows).
    variant: the scoring data (``clean`` or a corrupted-data check of
      :mod:`jaxticket.experiments.pai.scoring`); ``batches`` are drawn from
      it, a training method corrupts its training set the same way.
    workdir, progress: where a training method keeps its resumable stage
      (None: train without one) and whether it shows progress.
    tag: distinguishes the stages of several builds of one method and
      variant in one run (the collapse grid's).
  """
  cfg: ml_collections.ConfigDict
  prog: step_lib.Program
  params: PyTree
  batch_stats: PyTree
  mask: PyTree
  densities: np.ndarray
  keys: jax.Array
  batches: tuple[jax.Array, jax.Array] | None
  paths: list[str]
  input_shape: tuple[int, ...]
  data: Any = None
  seeds: list[int] | None = None
  variant: str = "clean"
  workdir: Any = None
  progress: bool = False
  tag: str = ""


class MaskMethod(Protocol):
  """One entry of :data:`METHODS`.

  Optional: ``trains`` (True: the masks are learned by training, so the
  layer-collapse grid builds them only with ``pai.gem_collapse``) and
  ``check(cfg, data)`` (a one-line ``ConfigError`` for settings that need
  the data, raised before the workdir is claimed).
  """
  name: str
  summary: str
  #: Does the mask depend on training data (then Su et al.'s corrupted-data
  #: and half-data checks apply)?
  data_dependent: bool

  def min_density(self, shapes: dict[str, tuple[int, ...]],
                  paths: list[str], cfg: ml_collections.ConfigDict) -> float:
    """Smallest density this method can build (0 = any), given the
    prunable leaves' shapes by path and their forward order."""
    ...

  def build(self, task: MaskTask) -> PyTree:
    """Stacked [R] boolean masks, replica r at ``task.densities[r]``."""
    ...


def forward_fn(prog: step_lib.Program, context: PyTree = None):
  """``forward(params, batch_stats, x, train) -> outputs`` of the model;
  ``context``: the data's shared arrays (a graph set's features and edges,
  whose ``x`` are node indices), None for self-contained examples."""
  def forward(params, batch_stats, x, train):
    return step_lib.apply_model(prog.model, params, batch_stats, x, train,
                                context)[0]
  return forward


def data_context(data: Any) -> PyTree:
  """``data.context`` as device arrays (None when it has none)."""
  context = getattr(data, "context", None)
  return None if context is None else jax.tree.map(jnp.asarray, context)


def context_digest(context: PyTree) -> int | None:
  """A content digest of a context (part of a compiled builder's key: the
  builder closes over the graph)."""
  if context is None:
    return None
  return zlib.crc32(b"".join(np.ascontiguousarray(np.asarray(a)).tobytes()
                             for a in jax.tree.leaves(context)))


def output_loss_fn(prog: step_lib.Program):
  """``loss(outputs, targets)``: the task's mean training loss."""
  return lambda outputs, y: mean_loss(prog.task, outputs, y)


@dataclasses.dataclass(frozen=True)
class ScoredMethod:
  """Scorer + allocation + rounds.

  ``rounds``: an int, or the ``cfg.pai`` key that holds it.
  ``allocation``: ``global`` or a rule of ``jaxticket.pruning.ratios``.
  """
  name: str
  scorer: str
  allocation: str
  rounds: int | str
  summary: str

  @property
  def data_dependent(self) -> bool:
    return self.scorer in scorers.DATA_DEPENDENT

  def num_rounds(self, cfg: ml_collections.ConfigDict) -> int:
    return int(cfg.pai[self.rounds] if isinstance(self.rounds, str)
               else self.rounds)

  def min_density(self, shapes: dict[str, tuple[int, ...]],
                  paths: list[str], cfg: ml_collections.ConfigDict) -> float:
    """Smallest density the allocation can serve (the smart ratio's fixed
    30% of the last linear layer must fit in the budget)."""
    if self.allocation != "smart":
      return 0.0
    sizes = [int(np.prod(shapes[p])) for p in paths]
    last = bool(re.search(cfg.masks.output_layer, paths[-1]))
    fixed = int(sizes[-1] * ratios.LINEAR_KEEP_RATIO) if last else 0
    return (fixed + 1) / sum(sizes)

  def build(self, task: MaskTask) -> PyTree:
    cfg, prog = task.cfg, task.prog
    scorer = scorers.get(self.scorer, key="pai.methods",
                         temperature=cfg.pai.grasp_temperature,
                         reinit=bool(cfg.pai.grasp_reinit))
    n_rounds = self.num_rounds(cfg)
    mask = task.mask
    leaf_paths = jax.tree.leaves(_paths_tree(mask))
    shapes = {p: m.shape for p, m in zip(leaf_paths, jax.tree.leaves(mask))}
    per_layer = self.allocation != "global"
    if per_layer:
      table = np.array([self._counts(cfg, task.paths, shapes, leaf_paths,
                                     float(d)) for d in task.densities],
                       np.int32)
    else:
      table = np.zeros((len(task.densities), len(leaf_paths)), np.int32)
    data = task.batches is not None and self.data_dependent
    xs, ys = task.batches if data else (
        jnp.zeros((len(task.densities), 1)), jnp.zeros((len(task.densities),
                                                        1)))
    context = getattr(task.data, "context", None)
    structure = jax.tree.structure(mask, is_leaf=lambda x: x is None)
    shapes = tuple(m.shape for m in jax.tree.leaves(mask))
    key = (self.name, self.scorer, self.allocation, n_rounds, data,
           float(cfg.pai.grasp_temperature), bool(cfg.pai.grasp_reinit),
           id(prog), str(structure), shapes,
           tuple(task.input_shape), context_digest(context))
    if key not in _COMPILED:  # one compiled builder per method and shape
      forward = forward_fn(prog, data_context(task.data))
      output_loss = output_loss_fn(prog)
      input_shape = tuple(task.input_shape)

      def one(params, stats, k, x, y, density, counts):
        ctx = scorers.ScoreContext(
            params, mask, k, None, ((x, y),) if data else (), forward,
            output_loss, stats, input_shape)
        if per_layer:
          groups = rounds.layer_groups(mask)
          target = rounds.layer_counts_table(groups, counts)
        else:
          groups = rounds.global_groups(mask)
          target = rounds.global_counts(mask, density)
        return rounds.prune_in_rounds(scorer, ctx, groups, target, n_rounds)

      _COMPILED[key] = (prog, loop_lib.vmapped(one))
    return _COMPILED[key][1](
        task.params, task.batch_stats, task.keys, xs, ys,
        jnp.asarray(task.densities, jnp.float32), jnp.asarray(table))

  def _counts(self, cfg, paths, shapes, leaf_paths, density) -> list[int]:
    ordered = [tuple(shapes[p]) for p in paths]
    if self.allocation == "smart":
      counts = controls.smart_ratio_counts_for(
          paths, [int(np.prod(s)) for s in ordered], density,
          cfg.model.name, cfg.masks.output_layer)
    else:
      counts = ratios.counts(self.allocation, ordered, density)
    by_path = dict(zip(paths, counts))
    return [by_path[p] for p in leaf_paths]


#: Compiled mask builders, keyed by method, options and shapes (the program
#: is kept with its builder so that its id stays unique).
_COMPILED: dict[tuple, tuple[step_lib.Program, Any]] = {}


def _paths_tree(mask: PyTree) -> PyTree:
  return masks_lib.map_prunable(lambda m, p: p, mask,
                                masks_lib.leaf_paths(mask))


METHODS: dict[str, MaskMethod] = {m.name: m for m in (
    ScoredMethod("random", "random", "global", 1,
                 "uniform random scores ranked across layers (each layer "
                 "keeps about the target density)"),
    ScoredMethod("magnitude", "magnitude", "global", 1,
                 "largest |w_0| across layers (magnitude at init)"),
    ScoredMethod("snip", "snip", "global", 1,
                 "SNIP |g * w| (Lee et al. 2019), one shot, global"),
    ScoredMethod("snip_iter", "snip", "global", "iterative_rounds",
                 "iterative SNIP (de Jorge et al. 2021): pai.iterative_rounds "
                 "rounds, density d^(k/n)"),
    ScoredMethod("grasp", "grasp", "global", 1,
                 "GraSP -w * Hg at T=200 (Wang et al. 2020), largest removed"),
    ScoredMethod("grasp_iter", "grasp_it", "global", "iterative_rounds",
                 "de Jorge et al.'s (2021) iterative GraSP, GRASP-It: g^2 of "
                 "the masked net, pai.iterative_rounds rounds, d^(k/n)"),
    ScoredMethod("synflow", "synflow", "global", "synflow_rounds",
                 "SynFlow (Tanaka et al. 2020), data-free, pai.synflow_rounds "
                 "rounds, density d^(k/n)"),
    ScoredMethod("random_erk", "random", "erk", 1,
                 "random positions at ERK layer densities (Evci et al. 2020)"),
    ScoredMethod("random_uniform", "random", "uniform", 1,
                 "random positions, every layer at the target density"),
    ScoredMethod("smart_ratio", "random", "smart", 1,
                 "Su et al.'s random ticket: random positions at smart-ratio "
                 "layer densities"),
    ScoredMethod("hybrid", "magnitude", "smart", 1,
                 "Su et al.'s hybrid ticket: smart-ratio counts, largest "
                 "|w_0| within each layer"),
    gem.GemMinerMethod(),
)}


__all__ = ["MaskTask", "MaskMethod", "ScoredMethod", "METHODS",
           "forward_fn", "output_loss_fn"]
