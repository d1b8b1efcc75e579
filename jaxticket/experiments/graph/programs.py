"""What the graph experiment's programs share: the node dataset of a
(graph, split), the compiled Trainers (fixed masks; UGS's soft-mask
search), training with best-validation selection and metric rows, and
masks as stacked host trees.

A graph's examples are node indices and the graph is the data's shared
``context`` (:class:`jaxticket.core.step.DataArrays`), so every program is
the platform's one step and loop: the edge mask is the mask of the GNN's
``edges`` leaf, per replica like any weight mask. All replicas of one
program share one split (the split is data, not a replica factor: each
split is its own program, the same compiled shape, served by the
compilation cache).

Selection follows UGS's code: evaluate every ``graph.eval_every`` steps
(their every epoch), keep the first evaluation with the best validation
accuracy, report the test accuracy there.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.stats
from tqdm.auto import tqdm

from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.workdir import Workdir
from jaxticket.data import graphs
from jaxticket.models import gnn, soft_mask

PyTree = Any

#: Leaves a fixed-mask program trains: kernels and biases (edge weights
#: stay frozen at 1; their mask prunes them).
TRAINED = r"(^|/)(kernel|bias)$"
#: Seed offset of a re-initialized control (weights never seen by the
#: ticket's search).
REINIT_OFFSET = 100_003


def sources(cfg: ml_collections.ConfigDict) -> graphs.Sources:
  g = cfg.graph
  return graphs.Sources(
      planetoid_dir=g.dir, drosophila_dir=g.drosophila_dir,
      sbm_nodes=g.sbm.nodes, sbm_classes=g.sbm.classes,
      sbm_degree=float(g.sbm.degree),
      sbm_homophily=(float(g.sbm.homophilous), float(g.sbm.heterophilous)),
      sbm_feature_dim=g.sbm.feature_dim,
      sbm_feature_signal=float(g.sbm.feature_signal), seed=g.sbm.seed)


def dataset(cfg: ml_collections.ConfigDict, graph: graphs.Graph, split: int,
            extra_edges: np.ndarray | None = None) -> graphs.NodeDataset:
  g = cfg.graph
  return graphs.node_dataset(graph, split, g.train_fraction, g.val_fraction,
                             public=g.split == "public",
                             extra_edges=extra_edges)


def recipe(cfg: ml_collections.ConfigDict, data: graphs.NodeDataset
           ) -> optim.Recipe:
  """Full batch (every training node each step), constant LR."""
  return optim.Recipe(steps=cfg.graph.steps, batch_size=len(data.train_y),
                      optimizer=cfg.graph.optimizer, momentum=0.9,
                      schedule="constant")


def hparams(cfg: ml_collections.ConfigDict, replicas: int) -> optim.HParams:
  return optim.stack_hparams([cfg.graph.lr] * replicas,
                             [cfg.graph.weight_decay] * replicas)


def fixed_trainer(cfg: ml_collections.ConfigDict, data: graphs.NodeDataset,
                  model: str, depth: int) -> loop_lib.Trainer:
  """Training under fixed edge and weight masks (tickets, controls,
  spectral graphs): kernels and biases trained, edge weights frozen."""
  net = gnn.build_gnn(model, data.num_classes, cfg.graph.hidden, depth)
  prog = step_lib.Program(net, tasks.get(data.task), recipe(cfg, data),
                          data.normalize, Parametrization(TRAINED),
                          prunable=gnn.GRAPH_PRUNABLE)
  return loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                          shard=cfg.train.shard_replicas)


def search_trainer(cfg: ml_collections.ConfigDict, data: graphs.NodeDataset,
                   model: str) -> loop_lib.Trainer:
  """UGS's mask search: weights, weight masks (``kernel_mask``) and the
  edge mask (the ``edges`` leaf) all trained, with the L1 penalty
  ``s1 ||M_edges||_1 + s2 ||M_weights||_1``. ``M_edges`` is the symmetric
  N x N adjacency mask of the paper, which holds each undirected edge
  twice: hence 2 s1 on the one ``edges`` entry per edge."""
  g = cfg.graph
  net = soft_mask.SoftMask(
      gnn.build_gnn(model, data.num_classes, g.hidden, g.depth))
  penalty = soft_mask.l1_penalty({gnn.EDGES: 2.0 * g.l1_edges,
                                  rf"(^|/){soft_mask.MASK_LEAF}$":
                                      g.l1_weights})
  prog = step_lib.Program(net, tasks.get(data.task), recipe(cfg, data),
                          data.normalize, Parametrization("", penalty=penalty),
                          prunable=gnn.GRAPH_PRUNABLE)
  return loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                          shard=cfg.train.shard_replicas)


# --- masks as host trees ------------------------------------------------------

def to_host(tree: PyTree) -> PyTree:
  return jax.tree.map(np.asarray, jax.device_get(tree))


def fill(template: PyTree, values: PyTree) -> PyTree:
  """``template`` (a mask tree, None on unmasked leaves) with every mask
  leaf taken from ``values`` at the same path (``values`` may be the
  body's tree, without the soft-mask leaves)."""
  vals = traverse_util.flatten_dict(dict(values), keep_empty_nodes=True)
  flat = traverse_util.flatten_dict(dict(template), keep_empty_nodes=True)
  out = {p: (None if v is None else jnp.asarray(vals[p]))
         for p, v in flat.items()}
  return traverse_util.unflatten_dict(out)


def stack(trees: list[PyTree]) -> PyTree:
  return jax.tree.map(lambda *xs: np.stack(xs), *trees,
                      is_leaf=lambda x: x is None)


def replica(tree: PyTree, r: int) -> PyTree:
  return jax.tree.map(lambda x: None if x is None else np.asarray(x)[r],
                      tree, is_leaf=lambda x: x is None)


def edge_mask(mask: PyTree) -> np.ndarray:
  return np.asarray(mask["edges"])


def with_edges(mask: PyTree, edges: np.ndarray) -> PyTree:
  return {**mask, "edges": np.asarray(edges, bool)}


def weight_counts(mask: PyTree) -> tuple[np.ndarray, int]:
  """(kept kernel weights per replica, total) of a stacked mask."""
  flat = traverse_util.flatten_dict(dict(mask), keep_empty_nodes=True)
  leaves = [np.asarray(v) for p, v in flat.items()
            if v is not None and p[-1] == "kernel"]
  kept = sum(l.reshape(l.shape[0], -1).sum(1) for l in leaves)
  return kept, sum(int(np.prod(l.shape[1:])) for l in leaves)


def save_masks(path: str, mask: PyTree) -> None:
  """A stacked host mask as .npz (atomically)."""
  flat = traverse_util.flatten_dict(dict(mask))
  arrays = {"/".join(p): np.asarray(v) for p, v in flat.items()
            if v is not None}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def load_masks(path: str, like: PyTree) -> PyTree:
  with np.load(path) as f:
    arrays = {k: f[k] for k in f.files}
  flat = traverse_util.flatten_dict(dict(like), keep_empty_nodes=True)
  return traverse_util.unflatten_dict(
      {p: (None if v is None else arrays["/".join(p)])
       for p, v in flat.items()})


# --- training with best-validation selection -----------------------------------

@dataclasses.dataclass
class Result:
  """Per-replica outcome of one program ([R] arrays)."""
  best_val: np.ndarray
  test_at_best: np.ndarray
  best_step: np.ndarray
  final_val: np.ndarray
  final_test: np.ndarray
  diverged: np.ndarray
  state: step_lib.TrainState | None = None


def train(cfg: ml_collections.ConfigDict, wd: Workdir,
          trainer: loop_lib.Trainer, state: step_lib.TrainState,
          stage: str, labels: list[dict], progress: bool,
          on_improve: Callable[[step_lib.TrainState, np.ndarray], None]
          | None = None) -> Result:
  """Train every replica ``graph.steps`` steps from ``state`` (already
  restarted under its masks), evaluating every ``graph.eval_every``;
  metric rows tagged ``stage`` and ``labels[r]``. ``on_improve(state,
  improved)`` runs at evaluations where some replica's validation
  accuracy beat its best so far (the first evaluation always does)."""
  g = cfg.graph
  r = len(labels)
  wd.truncate_metrics(lambda row: row.get("stage") != stage)
  best = np.full(r, -np.inf)
  at_best = np.zeros(r)
  best_step = np.zeros(r, np.int64)
  last = {}

  def on_eval(st, ev, losses):
    ev = jax.device_get(ev)
    val = np.asarray(ev.val_accuracy, np.float64)
    test = np.asarray(ev.test_accuracy, np.float64)
    steps = np.asarray(jax.device_get(st.step))
    diverged = np.asarray(jax.device_get(st.diverged_at)) >= 0
    improved = (val > best) & ~diverged
    best[improved] = val[improved]
    at_best[improved] = test[improved]
    best_step[improved] = steps[improved]
    if on_improve is not None and improved.any():
      on_improve(st, improved)
    last.update(val=val, test=test, diverged=diverged)
    tail = np.asarray(losses)[:, -1]
    wd.log_metrics([
        {"stage": stage, **labels[i], "replica": i, "step": int(steps[i]),
         "train_loss": float(tail[i]) if np.isfinite(tail[i]) else None,
         "val_loss": _finite(ev.val_loss[i]),
         "val_accuracy": float(val[i]), "test_accuracy": float(test[i]),
         "diverged": bool(diverged[i])} for i in range(r)])

  with tqdm(total=g.steps, disable=not progress, desc=stage, unit="step",
            leave=False, dynamic_ncols=True) as bar:
    state = trainer.train(state, hparams(cfg, r), g.steps, g.eval_every,
                          on_eval=on_eval, progress=bar)
  return Result(best, at_best, best_step, last["val"], last["test"],
                last["diverged"], state)


def _finite(x) -> float | None:
  x = float(x)
  return x if np.isfinite(x) else None


def summarize(values: np.ndarray) -> dict:
  """mean, std, standard error, 95% t-interval half-width, n and the
  values."""
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  n = len(v)
  half = (float(scipy.stats.t.ppf(0.975, n - 1) * v.std(ddof=1) /
                np.sqrt(n)) if n > 1 else None)
  return {"mean": float(v.mean()) if n else None,
          "std": float(v.std(ddof=1)) if n > 1 else None,
          "sem": float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
          "ci95": half, "n": n, "values": [float(x) for x in v]}


def dense_mask(trainer: loop_lib.Trainer, replicas: int) -> PyTree:
  """The all-kept host mask (stacked) of ``trainer``'s model, from the
  parameter shapes alone (nothing compiled)."""
  prog, arrays = trainer.prog, trainer.arrays
  shapes = jax.eval_shape(lambda: step_lib.init_state(
      prog, jax.random.key(0), tuple(arrays.train_x.shape[1:]),
      arrays.context).mask)
  return jax.tree.map(lambda s: np.ones((replicas,) + s.shape, bool),
                      shapes)


@dataclasses.dataclass
class Replica:
  """One replica of a fixed-mask program: its metric labels, the seed of
  its initialization, its (host) mask in the fixed model's structure."""
  labels: dict
  seed: int
  mask: PyTree


def run_fixed(cfg: ml_collections.ConfigDict, wd: Workdir, stages: Any,
              name: str, trainer: loop_lib.Trainer, replicas: list[Replica],
              progress: bool, measure: Callable[[loop_lib.Trainer, Any],
                                                dict] | None = None
              ) -> dict:
  """Train ``replicas`` as ONE program from their initializations under
  their frozen masks (a finished stage ``name`` is read back). Returns
  per-replica lists: ``test`` (at the best validation), ``val`` (best),
  ``final_test``, ``best_step``, ``diverged`` and what ``measure(trainer,
  final params)`` adds."""
  done = stages.get(name)
  if done is not None:
    return done
  state = trainer.init(loop_lib.replica_keys([r.seed for r in replicas]))
  mask = stack([r.mask for r in replicas])
  state = trainer.restart(state.replace(mask=fill(state.mask, mask)))
  res = train(cfg, wd, trainer, state, name, [r.labels for r in replicas],
              progress)
  out = {"test": res.test_at_best.tolist(), "val": res.best_val.tolist(),
         "final_test": res.final_test.tolist(),
         "best_step": res.best_step.tolist(),
         "diverged": res.diverged.tolist()}
  if measure is not None:
    out.update({k: np.asarray(v).tolist() for k, v in
                measure(trainer, res.state.params).items()})
  return stages.put(name, out)


__all__ = ["sources", "dataset", "recipe", "hparams", "fixed_trainer",
           "search_trainer", "train", "Result", "summarize", "fill", "stack",
           "replica", "edge_mask", "with_edges", "weight_counts",
           "save_masks", "load_masks", "to_host", "dense_mask", "TRAINED",
           "REINIT_OFFSET", "Replica", "run_fixed"]
