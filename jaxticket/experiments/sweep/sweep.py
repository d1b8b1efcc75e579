"""Vectorized sweeps: a grid of configs as few compiled programs as possible.

``jaxticket sweep --grid train.lr=0.01,0.1 --grid imp.prune_fraction=0.2,0.5``
runs IMP at every grid point (times ``seeds``). Grid keys that are
per-replica values (:data:`jaxticket.experiments.common.REPLICA_KEYS`: learning rate and
weight decay, traced in the step; the IMP prune fraction, traced in the
vmapped pruning; the rewind step, as staggered starts) go on the replica
axis: all their points x seeds are ONE program. Every other key (model
width, depth, batch size, schedule, ...)
changes the program, so each of its values is a separate program, run one
after another. Replicas are sharded over the local devices
(:func:`jaxticket.core.mesh.replica_mesh`), and a program with more replicas than
``sweep.max_replicas`` (0: from :func:`memory_estimate`) is split into
chunks of that size. Each program (and chunk) is an IMP run in its own
sub-workdir, so a killed sweep resumes where it stopped.

Across hosts (``jax.distributed``) there are two layouts. *Split* (the
default): each process runs every P-th unit on its local devices and
process 0 merges; no communication at all. *Spanning* (``--span-hosts``,
:func:`jaxticket.core.runtime.spans_hosts`): every process runs every unit
together, the replica axis sharded over the devices of all processes
(:func:`jaxticket.core.mesh.host_spanning_mesh`), so one program can use a
whole pod; process 0 writes the files.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket.experiments.imp import imp
from jaxticket.experiments import common
from jaxticket import models as models_lib
from jaxticket.experiments.sweep import report
from jaxticket.core import runtime
from jaxticket.experiments.summaries import SweepProgramSummary, SweepSummary
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.workdir import Workdir
from jaxticket.core import mesh as mesh_lib
from jaxticket.core import step as step_lib


def parse_grid(cfg: ml_collections.ConfigDict, specs: list[str]
               ) -> dict[str, list[Any]]:
  """``["train.lr=0.01,0.1", ...]`` -> ``{"train.lr": [0.01, 0.1], ...}``
  (values parsed by each key's type; unknown keys refused)."""
  grid = {}
  for spec in specs:
    key, values, _ = config_lib.parse_axis(cfg, spec, option="--grid")
    if key in grid:
      raise config_lib.ConfigError(f"--grid {key} given twice.")
    grid[key] = values
  if not grid:
    raise config_lib.ConfigError(
        "jaxticket sweep needs at least one --grid KEY=V1,V2,... e.g. "
        "--grid train.lr=0.01,0.1")
  return grid


def programs(grid: dict[str, list[Any]]
             ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
  """Group grid points into programs: (shape-changing values, replica
  points), in grid order."""
  shape_keys = [k for k in grid if k not in common.REPLICA_KEYS]
  replica_keys = [k for k in grid if k in common.REPLICA_KEYS]
  replica_points = [dict(zip(replica_keys, v)) for v in
                    itertools.product(*(grid[k] for k in replica_keys))]
  return [(dict(zip(shape_keys, v)), replica_points)
          for v in itertools.product(*(grid[k] for k in shape_keys))]


def memory_estimate(cfg: ml_collections.ConfigDict) -> int:
  """Rough bytes one replica needs while training: float32 params x 5
  (params, gradients, optimizer moments, update, mask) plus activations of
  one batch kept for the backward pass (x 3 for gradients and temporaries).
  Documented as an estimate; ``sweep.max_replicas`` overrides it."""
  data = common.load_data_unchecked(cfg)
  # a graph set's model reads the graph (node features, edges) whole
  kw = step_lib.context_kwargs(data.context)
  model = models_lib.build(cfg.model.name, data.num_classes, cfg.model.width,
                           cfg.model.depth or None, cfg.model.residual,
                           input_shape=data.input_shape,
                           **common.model_options(cfg, data))
  x = jax.numpy.zeros((cfg.train.batch_size, *data.input_shape))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x[:1],
                                                train=False, **kw))
  params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables))
  _, acts = jax.eval_shape(lambda v: model.apply(
      v, x, train=False, capture_intermediates=True, mutable=["intermediates"],
      **kw),
                           variables)
  activations = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(acts))
  return 4 * (5 * params + 3 * activations)


def device_memory() -> int:
  """Bytes available on one local device (GPU/TPU: its limit; CPU: half the
  host's memory)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)


def max_replicas(cfg: ml_collections.ConfigDict) -> int:
  """Replicas per program: ``sweep.max_replicas``, or what fits in 80% of
  the devices' memory by :func:`memory_estimate` (the local devices, or all
  devices of a host-spanning job)."""
  if cfg.sweep.max_replicas > 0:
    return cfg.sweep.max_replicas
  per_device = int(0.8 * device_memory() // max(1, memory_estimate(cfg)))
  return max(1, per_device * _device_count())


def _device_count() -> int:
  return jax.device_count() if runtime.spans_hosts() else \
      jax.local_device_count()


def devices_used(num_replicas: int, shard: bool) -> int:
  """How many devices a program of ``num_replicas`` replicas runs on."""
  if not shard:
    return 1
  if runtime.spans_hosts():
    return mesh_lib.host_spanning_mesh(num_replicas).size
  mesh = mesh_lib.replica_mesh(num_replicas)
  return 1 if mesh is None else mesh.size


def chunks(points: list[dict], seeds: int, limit: int) -> list[list[dict]]:
  """Split replica points so that points x seeds <= limit per chunk (at
  least one point per chunk)."""
  per = max(1, limit // seeds)
  return [points[i:i + per] for i in range(0, len(points), per)]


def _label(values: dict[str, Any]) -> str:
  return ",".join(f"{k}={v}" for k, v in values.items()) or "base"


def units(cfg: ml_collections.ConfigDict, grid: dict[str, list[Any]]
          ) -> list[dict]:
  """The sweep's programs and chunks, in order: each a unit of work with
  its sub-workdir name, config, shape-changing values and replica points."""
  out = []
  for p_index, (shape_values, points) in enumerate(programs(grid)):
    pcfg = cfg.copy_and_resolve_references()
    config_lib.set_values(pcfg, shape_values)
    config_lib.validate(pcfg)
    for c_index, chunk in enumerate(chunks(points, pcfg.seeds,
                                           max_replicas(pcfg))):
      out.append({"workdir": f"program_{p_index}" + (
          f"_chunk_{c_index}" if c_index else ""), "cfg": pcfg,
                  "values": shape_values, "points": chunk})
  return out


def run(cfg: ml_collections.ConfigDict, grid_specs: list[str], workdir: str,
        progress: bool = True, process_index: int = 0,
        process_count: int = 1) -> SweepSummary | None:
  """Run the sweep; write summary.json (one row per grid point and level),
  report.md and sweep.png; return the summary.

  Multi-host (``process_count`` > 1, e.g. after ``jax.distributed``
  initialization, with ``workdir`` on a shared filesystem): process i runs
  the units i, i + P, ... on its own devices and writes their sub-workdirs;
  process 0 then waits for every unit's summary and merges them into the
  same summary a single process would write. In a host-spanning job
  (:func:`jaxticket.core.runtime.spans_hosts`) every process runs every unit
  over the devices of all of them and process 0 writes. Processes other
  than 0 return None.
  """
  config_lib.validate(cfg)
  grid = parse_grid(cfg, grid_specs)
  wd = Workdir(workdir, "sweep")
  done = wd.finished(SweepSummary)
  wd.claim(cfg.copy_and_resolve_references(),
           config_lib.default_config())
  if done is not None and done.grid == {k: list(v) for k, v in
                                        grid.items()}:
    tqdm.write(f"{wd.path} holds this finished sweep; nothing recomputed.",
               file=sys.stderr)
    return done
  t0 = time.time()
  work = units(cfg, grid)
  span = runtime.spans_hosts()
  for i, unit in enumerate(work):
    if not span and i % process_count != process_index:
      continue
    replicas = len(unit["points"]) * unit["cfg"].seeds
    devices = devices_used(replicas, unit["cfg"].train.shard_replicas)
    if runtime.writes_files():
      tqdm.write(f"{unit['workdir']}: {_label(unit['values'])}; "
                 f"{len(unit['points'])} point(s) x {unit['cfg'].seeds} seeds "
                 f"on the replica axis, {devices} device(s)" + (
                     f" (process {process_index})" if process_count > 1
                     and not span else ""), file=sys.stderr)
    run_program(unit["cfg"], unit["points"],
                Workdir(wd.file(unit["workdir"]), "imp"),
                progress and runtime.writes_files())
  if process_index != 0:
    return None
  return merge(cfg, grid, wd, work, time.time() - t0,
               hosts={"processes": process_count,
                      "layout": "span" if span else "split"})


def merge(cfg: ml_collections.ConfigDict, grid: dict[str, list[Any]],
          wd: Workdir, work: list[dict], elapsed: float,
          poll_seconds: float = 5.0, hosts: dict | None = None) -> dict:
  """Collect every unit's summary (waiting for other hosts' units) into the
  sweep summary, report and plot."""
  rows, layout = [], []
  for unit in work:
    sub = Workdir(wd.file(unit["workdir"]), "imp")
    summary = sub.finished(SweepProgramSummary)
    if summary is None:
      tqdm.write(f"waiting for {unit['workdir']} (run by another process)",
                 file=sys.stderr)
    while summary is None:
      time.sleep(poll_seconds)
      summary = sub.finished(SweepProgramSummary)
    seeds = unit["cfg"].seeds
    layout.append({"workdir": unit["workdir"], "values": unit["values"],
                   "points": unit["points"],
                   "replicas": len(unit["points"]) * seeds,
                   "devices": summary.devices})
    axis = ReplicaAxis.of(point=range(len(unit["points"])),
                          seed=range(seeds))
    for j, idx in axis.groups("point").items():
      for level in summary.levels:
        rows.append({"point": {**unit["values"], **unit["points"][j]},
                     "level": level["level"],
                     "density": float(np.mean(np.asarray(
                         level["density_per_seed"])[idx])),
                     **{k: _select_stats(level[k], idx) for k in
                        ("test_accuracy", "val_accuracy")}})
  summary = SweepSummary(
      grid={k: list(v) for k, v in grid.items()}, rows=rows,
      programs=layout, seeds=cfg.seeds, model=cfg.model.name,
      dataset=cfg.data.name,
      hosts=hosts or {"processes": 1, "layout": "split"},
      wall_time_s=round(elapsed, 2))
  report.write_sweep_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(SweepSummary)


def _select_stats(stat: dict, idx: np.ndarray) -> dict:
  vals = [stat["per_seed"][i] for i in idx]
  ok = np.array([v is not None for v in vals])
  return common.stats(np.array([np.nan if v is None else v for v in vals]), ok)


def run_program(cfg: ml_collections.ConfigDict, points: list[dict],
                wd: Workdir, progress: bool) -> dict:
  """One program: IMP over points x seeds on the replica axis (resumable,
  a finished one is reused)."""
  done = wd.finished(SweepProgramSummary)
  wd.claim(cfg, config_lib.default_config())
  if done is not None and done.points == points:
    return done
  s = common.setup(cfg, points=points)
  outcome = imp.run_levels(s, wd, progress)
  levels = [{k: v for k, v in r.items() if k != "evaluation"}
            for r in outcome.rows]
  wd.write_summary(SweepProgramSummary(
      levels=levels, seeds=s.seeds, lrs=s.lrs, points=points,
      devices=devices_used(len(s.seeds), cfg.train.shard_replicas)))
  return wd.finished(SweepProgramSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> dict | None:
  """``jaxticket sweep --grid KEY=V1,V2 ...`` (multi-host with
  ``--distributed``); None in processes that leave the writing to process 0."""
  index, count = 0, 1
  if args.span_hosts and not args.distributed:
    raise config_lib.ConfigError(
        "--span-hosts needs --distributed (a multi-process job).")
  if args.distributed:
    index, count = runtime.init_distributed(
        args.coordinator, args.num_processes, args.process_id,
        span_hosts=args.span_hosts)
  summary = run(cfg, args.grid, args.workdir, progress=not args.no_progress,
                process_index=index, process_count=count)
  if summary is None:
    print(f"process {index}: " + (
        "done; process 0 wrote" if runtime.spans_hosts() else
        "its programs are done; process 0 merges") +
          f" the results into {os.path.abspath(args.workdir)}.")
  return summary


def console(summary: SweepSummary) -> str:
  return report.sweep_table(summary)
