"""Graph lottery tickets: UGS rounds and the fixed-mask comparisons, for
one (graph, model, split).

UGS (Chen et al., ICML 2021, Alg. 1; VITA-Group/Unified-LTH-GNN's
``main_pruning_imp.py``): round r starts from theta_0 (the same
initialization every round: their rewind) under the masks of round r - 1,
with fresh soft masks (1 + U(-1e-5, 1e-5) on the kept edges and weights,
their ``all_one`` init) and trains weights and soft masks together with
Adam and the L1 penalty (``graph.l1_edges``, ``graph.l1_weights``: their
s1, s2); at the evaluation with the best validation accuracy it prunes
``graph.edge_fraction`` of the remaining edges and ``graph.weight_fraction``
of the remaining weights by |soft mask| (:func:`jaxticket.pruning.ugs.prune`).
One program: the seeds on the replica axis, every round.

Then ONE fixed-mask program trains, from theta_0 with the masks frozen
(their ``run_fix_mask``), every setting of every round next to the dense
net, seeds on the replica axis:

- ``ugs``: the UGS ticket (its edge and weight masks);
- ``ugs_reinit``: the same masks, weights re-initialized (new seed);
- ``ugs_shuffle``: the UGS edges, each layer's weight mask shuffled
  (Frankle et al. 2021 / Su et al. 2020's layer-wise rearrangement);
- ``random``: random pruning at the same per-round fractions (their
  ``main_pruning_random.py``: edges and each layer's weights at random);
- ``random_edges``: random edges at UGS's edge count, UGS's weight mask;
- ``spectral``: the data-free edge mask of greedy spectral deletion
  (:mod:`jaxticket.pruning.spectral`) at UGS's edge count, UGS's weights.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket.core import loop as loop_lib
from jaxticket.core.workdir import Workdir
from jaxticket.data import graphs
from jaxticket.experiments.graph import programs
from jaxticket.experiments.stages import Stages
from jaxticket.models import soft_mask
from jaxticket.pruning import controls, spectral, ugs

PyTree = Any


#: One replica's UGS pruning / random pruning / layer-wise shuffle, vmapped
#: (one-off mask building; compiled once per shape).
_ugs_prune = loop_lib.vmapped(ugs.prune, in_axes=(0, 0, None, None))
_random_prune = loop_lib.vmapped(ugs.prune_random, in_axes=(0, 0, None, None))
_shuffle = loop_lib.vmapped(controls.shuffle_within_layers)


def _device(tree: PyTree) -> PyTree:
  return jax.tree.map(lambda x: None if x is None else jnp.asarray(x), tree,
                      is_leaf=lambda x: x is None)


def predicted_deleted(num_edges: int, fraction: float, rounds: int
                      ) -> list[int]:
  """Edges gone after each of ``rounds`` rounds, as the allocator counts
  them (round(f * alive) in float32)."""
  alive, out = num_edges, []
  for _ in range(rounds):
    alive -= int(np.floor(np.float32(fraction) * np.float32(alive) +
                          np.float32(0.5)))
    out.append(num_edges - alive)
  return out


def ugs_round(cfg: ml_collections.ConfigDict, wd: Workdir,
              trainer: loop_lib.Trainer, seeds: list[int], mask: PyTree,
              stage: str, labels: list[dict], progress: bool
              ) -> tuple[PyTree, dict]:
  """One UGS round from theta_0 under ``mask`` (stacked host body mask);
  returns the pruned mask (body structure) and the round's row."""
  g = cfg.graph
  keys = loop_lib.replica_keys(seeds)
  state = trainer.init(keys)
  noise = jax.vmap(lambda k, e: soft_mask.ones_with_noise(
      jax.random.fold_in(k, 7), e.shape, 1e-5))(keys, state.params["edges"])
  params = {**state.params, "edges": noise}
  state = trainer.restart(state.replace(
      params=params, mask=programs.fill(state.mask, mask)))
  ef, wf = jnp.float32(g.edge_fraction), jnp.float32(g.weight_fraction)
  chosen = {}

  def on_improve(st, improved):
    cand = programs.to_host(_ugs_prune(st.params, st.mask, ef, wf))
    old = chosen.get("mask")
    chosen["mask"] = cand if old is None else jax.tree.map(
        lambda c, o: None if c is None else np.where(
            improved.reshape((-1,) + (1,) * (c.ndim - 1)), c, o),
        cand, old, is_leaf=lambda x: x is None)

  res = programs.train(cfg, wd, trainer, state, stage, labels, progress,
                       on_improve)
  new = soft_mask.body_tree(chosen["mask"])
  return new, {"best_val": res.best_val.tolist(),
               "best_step": res.best_step.tolist()}


def random_rounds(mask: PyTree, seeds: list[int], rounds: int,
                  edge_fraction: float, weight_fraction: float
                  ) -> list[PyTree]:
  """Random pruning's masks after each round (stacked host, per seed)."""
  out, current = [], mask
  for r in range(1, rounds + 1):
    keys = jnp.stack([jax.random.fold_in(jax.random.key(s + 7919), r)
                      for s in seeds])
    current = programs.to_host(_random_prune(
        keys, _device(current), jnp.float32(edge_fraction),
        jnp.float32(weight_fraction)))
    out.append(current)
  return out


def shuffled(mask: PyTree, seeds: list[int], r: int) -> PyTree:
  """Each layer's weight mask permuted at random; the edges kept."""
  keys = jnp.stack([jax.random.fold_in(jax.random.key(s + 104729), r)
                    for s in seeds])
  out = programs.to_host(_shuffle(keys, _device({**mask, "edges": None})))
  return {**out, "edges": mask["edges"]}


def edge_stats(graph: graphs.Graph, structure: np.ndarray,
               keep: np.ndarray, cache: dict) -> dict:
  """Spectral gap (largest component) and component count of the graph
  of the kept edges (cached by mask)."""
  k = keep.tobytes()
  if k not in cache:
    edges = structure[keep]
    cache[k] = {"gap": spectral.spectral_gap(graph.num_nodes, edges),
                "components": spectral.num_components(graph.num_nodes,
                                                      edges)}
  return cache[k]


def prepare(cfg: ml_collections.ConfigDict, wd: Workdir, stages: Stages,
            graph: graphs.Graph, model: str, split: int,
            data: graphs.NodeDataset, fixed: loop_lib.Trainer,
            deletion_order: np.ndarray | None, progress: bool
            ) -> list[programs.Replica]:
  """Run (or read back) every UGS round of one (graph, model, split) and
  return the fixed-mask program's replicas: the dense net and every
  setting of ``graph.methods`` at every round, per seed."""
  g = cfg.graph
  structure = data.edges
  e_orig = graph.num_edges
  seeds = [cfg.seed + i for i in range(g.seeds)]
  prefix = f"tickets_{graph.name}_{model}_s{split}"
  base = programs.dense_mask(fixed, len(seeds))
  original = np.zeros((len(seeds), len(structure)), bool)
  original[:, :e_orig] = True  # candidate (added) edges never in a ticket
  base = programs.with_edges(base, original)
  tags = {"graph": graph.name, "model": model, "split": split}
  methods = list(g.methods)
  need_ugs = any(m != "random" for m in methods)

  ugs_masks = [base]
  search = None
  for r in range(1, g.rounds + 1 if need_ugs else 1):
    name = f"{prefix}_ugs_r{r}"
    path = wd.file("masks", f"{name}.npz")
    if stages.get(name) is not None and os.path.exists(path):
      ugs_masks.append(programs.load_masks(path, base))
      continue
    if search is None:
      search = programs.search_trainer(cfg, data, model)
    labels = [{**tags, "setting": "ugs_search", "round": r, "seed": s}
              for s in seeds]
    new, row = ugs_round(cfg, wd, search, seeds, ugs_masks[-1], name, labels,
                         progress)
    programs.save_masks(path, new)
    stages.put(name, row)
    ugs_masks.append(new)

  rp = random_rounds(base, seeds, g.rounds, g.edge_fraction,
                     g.weight_fraction)
  out = [programs.Replica({**tags, "setting": "dense", "round": 0,
                           "seed": s}, s, programs.replica(base, i))
         for i, s in enumerate(seeds)]
  for r in range(1, g.rounds + 1):
    m_ugs = ugs_masks[r] if need_ugs else None
    m_shuffled = shuffled(m_ugs, seeds, r) if "ugs_shuffle" in methods \
        else None
    for method in methods:
      for i, s in enumerate(seeds):
        if method == "random":
          mask = programs.replica(rp[r - 1], i)
        elif method in ("ugs", "ugs_reinit"):
          mask = programs.replica(m_ugs, i)
        elif method == "ugs_shuffle":
          mask = programs.replica(m_shuffled, i)
        elif method == "random_edges":
          mask = programs.with_edges(programs.replica(m_ugs, i),
                                     programs.edge_mask(rp[r - 1])[i])
        else:  # spectral: data-free edges at UGS's count
          m = programs.replica(m_ugs, i)
          deleted = e_orig - int(programs.edge_mask(m)[:e_orig].sum())
          if deletion_order is None or deleted > len(deletion_order):
            raise RuntimeError(f"the spectral deletion order holds "
                               f"{0 if deletion_order is None else len(deletion_order)}"
                               f" edges, {deleted} needed")
          keep = spectral.keep_mask(len(structure), deletion_order, deleted)
          keep[e_orig:] = False
          mask = programs.with_edges(m, keep)
        init = s + programs.REINIT_OFFSET if method == "ugs_reinit" else s
        out.append(programs.Replica({**tags, "setting": method, "round": r,
                                     "seed": s}, init, mask))
  return out


def rows(graph: graphs.Graph, structure: np.ndarray,
         replicas: list[programs.Replica], results: dict) -> list[dict]:
  """One row per (setting, round) of a split, with per-seed values."""
  e_orig = graph.num_edges
  kept_w, total_w = programs.weight_counts(programs.stack(
      [x.mask for x in replicas]))
  cache: dict = {}
  groups: dict[tuple, list[int]] = {}
  for i, x in enumerate(replicas):
    groups.setdefault((x.labels["setting"], x.labels["round"]), []).append(i)
  out = []
  for (m, r), idx in groups.items():
    keeps = [programs.edge_mask(replicas[i].mask) for i in idx]
    es = [edge_stats(graph, structure, k, cache) for k in keeps]
    lab = replicas[idx[0]].labels
    out.append({
        "graph": lab["graph"], "model": lab["model"], "split": lab["split"],
        "setting": m, "round": r,
        "edge_density": float(np.mean([k[:e_orig].sum() / e_orig
                                       for k in keeps])),
        "weight_density": float(np.mean(kept_w[idx] / total_w)),
        "spectral_gap": float(np.mean([e["gap"] for e in es])),
        "components": float(np.mean([e["components"] for e in es])),
        **{k: [results[k][i] for i in idx] for k in
           ("test", "val", "final_test", "rayleigh")},
        "diverged": int(sum(results["diverged"][i] for i in idx))})
  return out


__all__ = ["prepare", "rows", "ugs_round", "random_rounds", "shuffled",
           "predicted_deleted", "edge_stats"]
