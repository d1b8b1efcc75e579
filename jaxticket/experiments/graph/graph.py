"""``jaxticket graph``: lottery tickets of graph neural networks and
spectral edge pruning, on offline graphs.

For every graph of ``graph.graphs`` and model of ``graph.models``, on
``graph.splits`` seeded random node splits (``graph.seeds`` seeds each, on
the replica axis):

- ``tickets`` (:mod:`~jaxticket.experiments.graph.tickets`): UGS rounds
  (Chen et al. 2021: soft edge and weight masks with L1, prune 5% of the
  remaining edges and 20% of the remaining weights per round, rewind),
  then one fixed-mask program with the UGS ticket, its weight-mask controls
  (re-initialized, shuffled), random pruning at the same sparsities, random
  edges with UGS's weights, and the data-free spectral edge mask with
  UGS's weights, next to the dense net.
- ``spectral`` (:mod:`~jaxticket.experiments.graph.spectral_part`): greedy
  spectral-gap deletion and addition (Jamadandi et al. 2024) and random
  deletion; accuracy, spectral gap and the Dirichlet energy of the last
  hidden layer per GNN depth.

Resume: every finished program leaves ``stages/<name>.json`` (UGS rounds
also ``masks/<name>.npz``); a rerun skips those (an interrupted program
restarts from its beginning).
"""

from __future__ import annotations

import time
from typing import Any

import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket.core.checks import ConfigError
from jaxticket.core.workdir import Workdir
from jaxticket.data import graphs
from jaxticket.experiments import common
from jaxticket.experiments.graph import (programs, report, settings,
                                         spectral_part, tickets)
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.summaries import GraphSummary
from jaxticket.pruning import spectral


def needed_deletions(cfg: ml_collections.ConfigDict, graph: graphs.Graph
                     ) -> tuple[int, int, int]:
  """(greedy deletions, random deletions, additions) the config asks of
  ``graph``; refuses impossible ones naming the key."""
  g = cfg.graph
  e = graph.num_edges
  limit = spectral.max_deletable(graph.num_nodes, graph.edges)
  greedy = rand = add = 0
  if "spectral" in g.parts:
    dels = spectral_part.counts(g.spectral.delete_fractions, e)
    for f, k in zip(g.spectral.delete_fractions, dels):
      if k > limit:
        raise ConfigError(
            f"graph.spectral.delete_fractions={f} deletes {k} of the {e} "
            f"edges of {graph.name}, but at most {limit} can go without "
            "disconnecting it (a spanning tree must stay): lower the "
            "fraction.")
    greedy = rand = max(dels)
    add = max(spectral_part.counts(g.spectral.add_fractions, e))
  if "tickets" in g.parts and "spectral" in g.methods and g.rounds:
    k = tickets.predicted_deleted(e, g.edge_fraction, g.rounds)[-1]
    if k > limit:
      raise ConfigError(
          f"graph.rounds={g.rounds} at graph.edge_fraction="
          f"{g.edge_fraction} prunes {k} of the {e} edges of {graph.name}, "
          f"but the spectral edge mask (graph.methods) can delete at most "
          f"{limit} without disconnecting it: lower graph.rounds or "
          "graph.edge_fraction, or drop spectral from graph.methods.")
    greedy = max(greedy, k)
  return greedy, rand, add


def graph_row(graph: graphs.Graph) -> dict:
  same = graph.labels[graph.edges[:, 0]] == graph.labels[graph.edges[:, 1]]
  return {"graph": graph.name, "nodes": graph.num_nodes,
          "edges": graph.num_edges, "classes": graph.num_classes,
          "features": int(graph.features.shape[1]),
          "homophily": float(same.mean()) if len(same) else None,
          "components": spectral.num_components(graph.num_nodes,
                                                graph.edges),
          "spectral_gap": spectral.spectral_gap(graph.num_nodes,
                                                graph.edges),
          "max_deletable": spectral.max_deletable(graph.num_nodes,
                                                  graph.edges)}


def aggregate(rows: list[dict], keys: tuple[str, ...],
              values: tuple[str, ...], means: tuple[str, ...]) -> list[dict]:
  """Merge the per-split rows of each ``keys`` group: per-seed ``values``
  concatenated and summarized, ``means`` averaged over splits."""
  groups: dict[tuple, list[dict]] = {}
  for r in rows:
    groups.setdefault(tuple(r[k] for k in keys), []).append(r)
  out = []
  for key, rs in groups.items():
    row = dict(zip(keys, key))
    for m in means:
      row[m] = float(np.mean([r[m] for r in rs]))
    for v in values:
      name = {"test": "test_accuracy", "val": "val_accuracy",
              "final_test": "final_test_accuracy"}.get(v, v)
      row[name] = programs.summarize(np.concatenate([r[v] for r in rs]))
    row["diverged"] = int(sum(r["diverged"] for r in rs))
    row["splits"] = len(rs)
    out.append(row)
  return out


def run_split(cfg: ml_collections.ConfigDict, wd: Workdir, stages: Stages,
              graph: graphs.Graph, model: str, split: int, path: dict,
              order: np.ndarray, added: np.ndarray, progress: bool
              ) -> tuple[list[dict], list[dict]]:
  """Both parts on one split: the UGS rounds, then one fixed-mask program
  per depth; at ``graph.depth`` the tickets' and the spectral replicas
  share one program."""
  g = cfg.graph
  data = programs.dataset(cfg, graph, split, added)
  depths = []
  if "tickets" in g.parts:
    depths.append(g.depth)
  if "spectral" in g.parts:
    depths += [d for d in g.spectral.depths if d not in depths]
  ticket_rows, spectral_rows, gaps = [], [], {}
  measure = spectral_part.measure(graph)
  for depth in depths:
    trainer = programs.fixed_trainer(cfg, data, model, depth)
    reps_t = (tickets.prepare(cfg, wd, stages, graph, model, split, data,
                              trainer, order, progress)
              if "tickets" in g.parts and depth == g.depth else [])
    reps_s = (spectral_part.prepare(cfg, graph, path, data, trainer, model,
                                    split, depth)
              if "spectral" in g.parts and depth in g.spectral.depths
              else [])
    name = f"fixed_{graph.name}_{model}_s{split}_d{depth}"
    res = programs.run_fixed(cfg, wd, stages, name, trainer, reps_t + reps_s,
                             progress, measure)
    part = lambda lo, hi: {k: v[lo:hi] for k, v in res.items()}
    if reps_t:
      ticket_rows += tickets.rows(graph, data.edges, reps_t,
                                  part(0, len(reps_t)))
    if reps_s:
      spectral_rows += spectral_part.rows(
          graph, data.edges, reps_s, part(len(reps_t), len(reps_t) +
                                          len(reps_s)), gaps)
  return ticket_rows, spectral_rows


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> GraphSummary:
  """Run every part of ``graph.parts``; write the run directory."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  g = cfg.graph
  src = programs.sources(cfg)
  loaded = {name: graphs.load_graph(name, src) for name in g.graphs}
  for name, graph in loaded.items():
    if g.split == "public" and graph.public_split is None:
      raise ConfigError(f"graph.split=public: {name} has no public split "
                        "(only the Planetoid graphs do); use "
                        "graph.split=random or drop it from graph.graphs.")
  plans = {name: needed_deletions(cfg, gr) for name, gr in loaded.items()}
  wd, done = common.open_run(cfg, workdir, "graph", GraphSummary)
  if done is not None:
    return done
  t0 = time.time()
  stages = Stages(wd)
  seeds = [cfg.seed + i for i in range(g.seeds)]
  splits = 1 if g.split == "public" else g.splits
  ticket_rows, spectral_rows, curves, timings = [], [], {}, {}
  for name, graph in loaded.items():
    t = time.time()
    greedy, rand, add = plans[name]
    path = stages.get(f"paths_{name}")
    if path is None:
      path = stages.put(f"paths_{name}", spectral_part.paths(
          cfg, graph, greedy, add, seeds, rand))
    timings[f"paths_{name}"] = round(time.time() - t, 2)
    curves[name] = {
        "update_every": path["update_every"],
        "delete": {k: path["delete"][k] for k in ("changed", "gaps")},
        "add": {k: path["add"][k] for k in ("changed", "gaps")},
        "random": [{k: r[k] for k in ("seed", "changed", "gaps")}
                   for r in path["random"]]}
    order = np.asarray(path["delete"]["order"], np.int64)
    added = np.asarray(path["add"]["added"], np.int64).reshape(-1, 2)
    for model in g.models:
      for split in range(splits):
        t = time.time()
        ticket_rows_, spectral_rows_ = run_split(
            cfg, wd, stages, graph, model, split, path, order, added,
            progress)
        ticket_rows += ticket_rows_
        spectral_rows += spectral_rows_
        timings[f"{name}_{model}_s{split}"] = round(time.time() - t, 2)
  summary = GraphSummary(
      graphs=[graph_row(gr) for gr in loaded.values()],
      tickets=aggregate(ticket_rows, ("graph", "model", "setting", "round"),
                        ("test", "val", "final_test", "rayleigh"),
                        ("edge_density", "weight_density", "spectral_gap",
                         "components")),
      spectral=aggregate(spectral_rows, ("graph", "model", "depth",
                                         "setting", "fraction"),
                         ("test", "val", "final_test", "dirichlet",
                          "rayleigh"), ("edges", "spectral_gap")),
      gap_curves=curves, models=list(g.models), seeds=seeds, splits=splits,
      split=g.split, methods=list(g.methods), rounds=int(g.rounds),
      edge_fraction=float(g.edge_fraction),
      weight_fraction=float(g.weight_fraction), timings_s=timings,
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(GraphSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> GraphSummary:
  """``jaxticket graph``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: GraphSummary) -> str:
  return report.console_text(summary)


__all__ = ["run", "command", "console", "needed_deletions", "aggregate"]
