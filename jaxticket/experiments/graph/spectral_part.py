"""Spectral pruning's effect on a GNN: accuracy, spectral gap and
over-smoothing, for one (graph, model, split) and every depth.

Per graph, data-free (:func:`paths`, host NumPy): greedy deletion that
maximizes the spectral gap (Jamadandi et al. 2024's ``proxydelmax``),
greedy addition that maximizes it (``proxyaddmax``, the FoSR-like
direction), and random deletion as the control (deletions never
disconnect the graph; a random order per replica seed), each with the exact gap along the way.

Per (graph, model, split, depth) ONE program (at ``graph.depth`` the same
one as the tickets', :mod:`~jaxticket.experiments.graph.graph`) trains,
with dense weights
and the edge masks as the only difference, the original graph, the
greedy deletions at ``graph.spectral.delete_fractions``, the random
deletions at the same fractions and the greedy additions at
``graph.spectral.add_fractions`` (candidate edges are part of the maskable
structure, switched on by the mask), seeds on the replica axis. After
training, the over-smoothing of the last hidden layer H is measured on the
*original* graph (one yardstick for every edge set): the Dirichlet energy
``E(H) = sum over edges (i, j) of ||h_i / sqrt(d_i) - h_j / sqrt(d_j)||^2``
= ``tr(H^T L H)`` with L the self-looped normalized Laplacian (d = degree
+ 1), reported per node (``dirichlet``) and relative to ``||H||_F^2``
(``rayleigh``, in [0, 2]; scale-free, so depths compare); over-smoothing
drives both towards 0 (Rusch, Bronstein & Mishra 2023).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket.core import loop as loop_lib
from jaxticket.data import graphs
from jaxticket.experiments.graph import programs
from jaxticket.pruning import spectral

PyTree = Any


def update_every(cfg: ml_collections.ConfigDict, num_edges: int) -> int:
  k = cfg.graph.spectral.update_every
  return int(k) if k else max(1, int(round(0.005 * num_edges)))


def counts(fractions, num_edges: int) -> list[int]:
  return [int(round(f * num_edges)) for f in fractions]


def paths(cfg: ml_collections.ConfigDict, graph: graphs.Graph,
          delete: int, add: int, seeds: list[int], random_delete: int
          ) -> dict:
  """Greedy deletion of ``delete`` edges, greedy addition of ``add``, and
  a random deletion of ``random_delete`` per seed (JSON-ready)."""
  n, e = graph.num_nodes, graph.edges
  k = update_every(cfg, graph.num_edges)
  out = {"update_every": k}
  d = spectral.greedy_delete(n, e, delete, k, key="graph.spectral")
  out["delete"] = {"order": d.order.tolist(), "changed": d.changed,
                   "gaps": d.gaps}
  a = spectral.greedy_add(n, e, add, k, seed=cfg.seed)
  out["add"] = {"added": a.added.tolist(), "changed": a.changed,
                "gaps": a.gaps}
  out["random"] = []
  for s in seeds:
    r = spectral.random_delete(n, e, random_delete, seed=s + 31337,
                               key="graph.spectral", gap_every=k)
    out["random"].append({"seed": s, "order": r.order.tolist(),
                          "changed": r.changed, "gaps": r.gaps})
  return out


def dirichlet(hidden: np.ndarray, graph: graphs.Graph) -> tuple[np.ndarray,
                                                                np.ndarray]:
  """(E(H) / N, E(H) / ||H||_F^2) per replica of ``hidden`` (R, N, H), on
  ``graph``'s self-looped normalized Laplacian."""
  h = np.asarray(hidden, np.float64)
  deg = np.bincount(graph.edges.ravel(), minlength=graph.num_nodes) + 1.0
  y = h / np.sqrt(deg)[None, :, None]
  i, j = graph.edges[:, 0], graph.edges[:, 1]
  energy = ((y[:, i] - y[:, j]) ** 2).sum(axis=(1, 2))
  norm = (h ** 2).sum(axis=(1, 2))
  return energy / graph.num_nodes, energy / np.maximum(norm, 1e-30)


def last_hidden(trainer: loop_lib.Trainer, params: PyTree) -> np.ndarray:
  """The sown last hidden layer of every replica, (R, N, H)."""
  model = trainer.prog.model

  def one(p, context):
    _, out = model.apply({"params": p}, jnp.zeros((1,), jnp.int32),
                         context=context, mutable=["intermediates"])
    return out["intermediates"]["hidden"][0]

  fn = loop_lib.vmapped(one, in_axes=(0, None))
  return np.asarray(fn(params, trainer.arrays.context))


def settings(cfg: ml_collections.ConfigDict) -> list[tuple[str, float]]:
  sp = cfg.graph.spectral
  return ([("original", 0.0)]
          + [("spectral_delete", float(f)) for f in sp.delete_fractions]
          + [("random_delete", float(f)) for f in sp.delete_fractions]
          + [("spectral_add", float(f)) for f in sp.add_fractions])


def edge_masks(graph: graphs.Graph, path: dict, structure: np.ndarray,
               setting: str, fraction: float, seed_index: int
               ) -> np.ndarray:
  """Bool over ``structure`` (the graph's edges, then the added ones)."""
  e = graph.num_edges
  keep = np.zeros(len(structure), bool)
  keep[:e] = True
  k = int(round(fraction * e))
  if setting == "spectral_delete":
    keep[:e] = spectral.keep_mask(e, np.asarray(path["delete"]["order"]), k)
  elif setting == "random_delete":
    keep[:e] = spectral.keep_mask(
        e, np.asarray(path["random"][seed_index]["order"]), k)
  elif setting == "spectral_add":
    keep[e:e + k] = True
  return keep


def prepare(cfg: ml_collections.ConfigDict, graph: graphs.Graph,
            path: dict, data: graphs.NodeDataset, trainer: loop_lib.Trainer,
            model: str, split: int, depth: int) -> list[programs.Replica]:
  """The replicas of one depth's program: every edge setting x seed,
  dense weights (``data`` holds the graph's edges, then the added ones)."""
  seeds = [cfg.seed + i for i in range(cfg.graph.seeds)]
  structure = data.edges
  base = programs.dense_mask(trainer, 1)
  out = []
  for st, f in settings(cfg):
    for i, s in enumerate(seeds):
      keep = edge_masks(graph, path, structure, st, f, i)
      mask = programs.with_edges(programs.replica(base, 0), keep)
      out.append(programs.Replica(
          {"graph": graph.name, "model": model,
           "split": split, "depth": depth, "setting": st, "fraction": f,
           "seed": s}, s, mask))
  return out


def measure(graph: graphs.Graph) -> Callable:
  """``programs.run_fixed``'s measure: the last hidden layer's Dirichlet
  energy (per node) and Rayleigh quotient on the original graph."""
  def fn(trainer: loop_lib.Trainer, params: PyTree) -> dict:
    d, r = dirichlet(last_hidden(trainer, params), graph)
    return {"dirichlet": d, "rayleigh": r}
  return fn


def rows(graph: graphs.Graph, structure: np.ndarray,
         replicas: list[programs.Replica], results: dict, gaps: dict
         ) -> list[dict]:
  """One row per (depth, setting, fraction) of a split, per-seed values
  (``gaps``: a cache of spectral gaps by edge mask)."""
  groups: dict[tuple, list[int]] = {}
  for i, x in enumerate(replicas):
    groups.setdefault((x.labels["setting"], x.labels["fraction"]),
                      []).append(i)
  out = []
  for (st, f), idx in groups.items():
    keeps = [programs.edge_mask(replicas[i].mask) for i in idx]
    for k in keeps:
      if k.tobytes() not in gaps:
        gaps[k.tobytes()] = spectral.spectral_gap(graph.num_nodes,
                                                  structure[k])
    lab = replicas[idx[0]].labels
    out.append({
        "graph": lab["graph"], "model": lab["model"], "split": lab["split"],
        "depth": lab["depth"], "setting": st, "fraction": f,
        "edges": float(np.mean([k.sum() for k in keeps])),
        "spectral_gap": float(np.mean([gaps[k.tobytes()] for k in keeps])),
        **{k: [results[k][i] for i in idx] for k in
           ("test", "val", "final_test", "dirichlet", "rayleigh")},
        "diverged": int(sum(results["diverged"][i] for i in idx))})
  return out


__all__ = ["paths", "prepare", "rows", "measure", "dirichlet",
           "last_hidden", "settings", "edge_masks", "update_every", "counts"]
