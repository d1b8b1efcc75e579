"""Sweeps and the replica axis across devices.

Multi-device checks run in a subprocess with 8 simulated CPU devices
(``jax_num_cpu_devices`` must be set before jax's CPU backend starts)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxticket import config
from jaxticket.experiments.sweep import sweep
from jaxticket.core import mesh as mesh_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str) -> dict:
  """Run ``code`` with 8 simulated CPU devices; it prints one JSON line."""
  prelude = ("import jax\njax.config.update('jax_num_cpu_devices', 8)\n"
             "from jaxticket.core import runtime\nruntime.enable_compile_cache()\n")
  out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_sharded_training_equals_unsharded_and_grid_lands_on_replicas():
  result = run_python("""
    import json, jax, jax.numpy as jnp, numpy as np
    from jaxticket import config
    from jaxticket.experiments import common
    from jaxticket.core import loop as loop_lib
    from jaxticket.core import mesh as mesh_lib
    cfg = config.default_config("tiny")
    cfg.model.width = 0.25
    # 4 grid points x 2 seeds = 8 replicas; the first point has lr 0.
    points = [{"train.lr": lr} for lr in (0.0, 0.05, 0.1, 0.2)]
    s = common.setup(cfg, points=points)
    plain = loop_lib.Trainer(s.trainer.prog, s.data, shard=False)
    st = plain.init(loop_lib.replica_keys(s.seeds))
    mask = common.dense_masks(cfg, st.params)
    a = plain.train(common.copy_tree(st), s.hparams, 10, 5)
    b = s.trainer.train(common.copy_tree(st), s.hparams, 10, 5)
    gaps = np.concatenate([np.abs(np.asarray(x) - np.asarray(y)).ravel()
                           for x, y in zip(jax.tree.leaves(a.params),
                                           jax.tree.leaves(b.params))])
    diff, off = float(gaps.max()), float((gaps > 1e-6).mean())
    kernel = b.params["Dense_0"]["kernel"]
    moved = [bool((np.asarray(kernel[i]) != np.asarray(st.params["Dense_0"]
              ["kernel"][i])).any()) for i in range(8)]
    print(json.dumps({"devices": jax.device_count(), "diff": diff,
                      "off": off,
                      "num_devices": mesh_lib.replica_mesh(8).devices.size,
                      "lrs": [float(x) for x in s.hparams.lr],
                      "moved": moved}))
  """)
  assert result["devices"] == 8
  assert result["num_devices"] == 8
  # Sharding only changes rounding (~1e-8 per step). A rounding flip at a
  # ReLU kink switches one unit's gradient on or off, moving a few weights
  # by up to lr x gradient (seen: 2e-4 on one replica after 10 steps on an
  # AMD EPYC), so bound the largest gap loosely and the share of weights
  # that moved at all tightly.
  assert result["diff"] < 1e-3 and result["off"] < 0.01, result
  np.testing.assert_allclose(result["lrs"], [0, 0, .05, .05, .1, .1, .2, .2])
  assert result["moved"] == [False, False] + [True] * 6  # lr 0 keeps init


@pytest.mark.slow
def test_replica_mesh_and_padding_of_uneven_replica_counts():
  """min(R, 8) devices; 12 replicas run padded to 16 (two per device) and
  give back 12 replicas equal to unsharded training within rounding."""
  result = run_python("""
    import json, jax, jax.numpy as jnp, numpy as np
    from jaxticket import config
    from jaxticket.experiments import common
    from jaxticket.core import loop as loop_lib
    from jaxticket.core import mesh as mesh_lib
    sizes = {r: (None if mesh_lib.replica_mesh(r) is None else
                 mesh_lib.replica_mesh(r).devices.size)
             for r in (1, 3, 4, 6, 8, 12, 16)}
    cfg = config.default_config("tiny")
    cfg.model.width = 0.25
    points = [{"train.lr": 0.02 * (i + 1)} for i in range(6)]  # x 2 seeds
    s = common.setup(cfg, points=points)
    plain = loop_lib.Trainer(s.trainer.prog, s.data, shard=False)
    st = plain.init(loop_lib.replica_keys(s.seeds))
    mask = common.dense_masks(cfg, st.params)
    a, la = plain.run(common.copy_tree(st), s.hparams, 5)
    b, lb = s.trainer.run(common.copy_tree(st), s.hparams, 5)
    diff = max(float(jnp.abs(x - y).max()) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b))
               if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
               and x.dtype != bool)
    same_masks = all(bool((x == y).all()) for x, y in
                     zip(jax.tree.leaves(a.mask), jax.tree.leaves(b.mask)))
    assert same_masks
    print(json.dumps({"sizes": sizes, "diff": diff,
                      "shapes": [list(lb.shape), list(b.step.shape)],
                      "loss_diff": float(jnp.abs(la - lb).max()),
                      # results come back whole, on one device
                      "devices": len(b.params["Dense_0"]["kernel"]
                                     .sharding.device_set)}))
  """)
  assert result["sizes"] == {"1": None, "3": 3, "4": 4, "6": 6, "8": 8,
                             "12": 8, "16": 8}
  assert result["shapes"] == [[12, 5], [12]]
  assert result["diff"] < 1e-3 and result["loss_diff"] < 1e-4, result
  assert result["devices"] == 1


def test_programs_group_replica_keys():
  grid = {"train.lr": [0.1, 0.3], "model.width": [0.5, 1.0],
          "train.weight_decay": [0.0, 1e-4], "imp.prune_fraction": [0.2, 0.5]}
  progs = sweep.programs(grid)
  assert [p[0] for p in progs] == [{"model.width": 0.5}, {"model.width": 1.0}]
  assert len(progs[0][1]) == 8  # lr x wd x prune fraction on one axis
  assert sweep.chunks(progs[0][1], seeds=2, limit=8) == [
      progs[0][1][:4], progs[0][1][4:]]


def test_prune_fraction_per_replica_in_one_program(tmp_path):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.imp.levels = 2
  cfg.imp.output_prune_fraction = -1.0  # everything at the body's rate
  summary = sweep.run(cfg, ["imp.prune_fraction=0.2,0.5"], str(tmp_path),
                      progress=False)
  assert [p["replicas"] for p in summary["programs"]] == [4]  # one program
  got = {(r["point"]["imp.prune_fraction"], r["level"]): r["density"]
         for r in summary["rows"]}
  for f in (0.2, 0.5):
    for level in range(3):
      assert got[(f, level)] == pytest.approx((1 - f) ** level, abs=3e-3)


def test_memory_estimate_grows_with_width_and_batch():
  cfg = config.default_config()
  small = sweep.memory_estimate(cfg)
  cfg.model.width = 2.0
  assert sweep.memory_estimate(cfg) > 2 * small  # hidden params ~ width^2
  params = 40 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
  assert small >= 4 * 5 * params


@pytest.mark.slow
def test_sweep_chunked_equals_unchunked_and_resumes(tmp_path):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.imp.levels = 1
  grid = ["train.lr=0.05,0.2", "train.weight_decay=0,0.001"]
  whole = sweep.run(cfg, grid, str(tmp_path / "whole"), progress=False)
  cfg.sweep.max_replicas = 4
  chunked = sweep.run(cfg, grid, str(tmp_path / "chunked"), progress=False)
  assert [p["replicas"] for p in whole["programs"]] == [8]
  assert [p["replicas"] for p in chunked["programs"]] == [4, 4]
  assert [r["point"] for r in whole["rows"]] == \
      [r["point"] for r in chunked["rows"]]
  for a, b in zip(whole["rows"], chunked["rows"]):
    np.testing.assert_allclose(a["test_accuracy"]["per_seed"],
                               b["test_accuracy"]["per_seed"], atol=0.011)
  # Each grid point really trained at its own LR and weight decay.
  first = {json.dumps(r["point"]): r["test_accuracy"]["mean"]
           for r in whole["rows"] if r["level"] == 0}
  assert len(set(first.values())) == 4
  assert os.path.exists(tmp_path / "whole" / "sweep.png")
  # A finished sweep is returned, not recomputed.
  assert sweep.run(cfg, grid, str(tmp_path / "chunked"),
                   progress=False)["rows"] == chunked["rows"]


def test_bad_grid_key_names_it(tmp_path):
  with pytest.raises(config.ConfigError, match="train.lrr"):
    sweep.run(config.default_config("tiny"), ["train.lrr=0.1"],
              str(tmp_path), progress=False)


def free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(args: list[str], workdir, port: int, processes: int = 2,
            env: dict | None = None) -> list[subprocess.Popen]:
  """Start the processes of one local ``--distributed`` job."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
  return [subprocess.Popen(
      [sys.executable, "-m", "jaxticket.cli", *args, "--workdir",
       str(workdir), "--distributed", "--coordinator", f"127.0.0.1:{port}",
       "--num-processes", str(processes), "--process-id", str(i)],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(processes)]


def _succeed(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
  """Wait for every process; each must exit 0. Returns (stdout, stderr)s."""
  outs = [p.communicate(timeout=900) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  return outs


@pytest.mark.slow
def test_two_process_sweep_on_localhost_equals_one_process(tmp_path):
  """jax.distributed with a local coordinator: process 0 runs program 0,
  process 1 program 1, process 0 merges; same rows as one process."""
  args = ["sweep", "--config", "configs/mnist1d_lenet.py:tiny",
          "--config.imp.levels=1", "--grid", "model.width=0.25,0.5",
          "--grid", "train.lr=0.05,0.2", "--no-progress"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  procs = _launch(args, tmp_path / "multi", free_port())
  outs = _succeed(procs)
  assert "process 1: its programs are done" in outs[1][0]
  assert "(process 1)" in outs[1][1] and "program_1" in outs[1][1]
  single = subprocess.run(
      [sys.executable, "-m", "jaxticket.cli", *args, "--workdir",
       str(tmp_path / "single")], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=900)
  assert single.returncode == 0, single.stderr[-3000:]
  multi = json.load(open(tmp_path / "multi" / "summary.json"))
  one = json.load(open(tmp_path / "single" / "summary.json"))
  assert multi["rows"] == one["rows"]  # same programs, same device layout
  assert multi["programs"] == one["programs"]


@pytest.mark.slow
def test_host_spanning_sweep_equals_one_process_and_resumes(tmp_path):
  """--span-hosts: ONE program (6 replicas, padded to 8) over the 2 x 2
  devices of two processes (a global mesh, gloo collectives on CPU) gives
  the rows of a one-process run; only process 0 writes (no duplicated metric rows); a job killed
  after a checkpoint resumes to exactly the uninterrupted result."""
  args = ["sweep", "--config", "configs/mnist1d_lenet.py:tiny",
          "--config.imp.levels=1", "--config.train.cpu_devices=2",
          "--config.checkpoint.every_steps=10", "--grid",
          "train.lr=0.05,0.1,0.2", "--no-progress", "--span-hosts"]
  procs = _launch(args, tmp_path / "span", free_port())
  outs = _succeed(procs)
  assert "process 1: done; process 0 wrote" in outs[1][0]
  span = json.load(open(tmp_path / "span" / "summary.json"))
  assert span["hosts"] == {"processes": 2, "layout": "span"}
  assert span["programs"][0]["devices"] == 4  # 2 per process, 6 padded to 8
  single = subprocess.run(
      [sys.executable, "-m", "jaxticket.cli", *args[:-1], "--workdir",
       str(tmp_path / "single")], cwd=ROOT, capture_output=True, text=True,
      timeout=900, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert single.returncode == 0, single.stderr[-3000:]
  one = json.load(open(tmp_path / "single" / "summary.json"))
  assert one["programs"][0]["devices"] == 2
  for a, b in zip(span["rows"], one["rows"]):  # other layout: rounding
    assert a["point"] == b["point"] and a["density"] == b["density"]
    np.testing.assert_allclose(a["test_accuracy"]["per_seed"],
                               b["test_accuracy"]["per_seed"], atol=3e-3)
  lines = lambda d: open(d / "program_0" / "metrics.jsonl").readlines()
  assert len(lines(tmp_path / "span")) == len(lines(tmp_path / "single"))

  # Kill process 0 right after its 2nd checkpoint; its partner then waits in
  # a collective and is stopped too (as a cluster stops a failed job).
  procs = _launch(args, tmp_path / "killed", free_port(),
                  env={"JAXTICKET_FAULT": "kill_after_save:2"})
  procs[0].wait(timeout=900)
  assert procs[0].returncode == -9
  procs[1].kill()
  procs[1].wait()
  assert not (tmp_path / "killed" / "summary.json").exists()
  procs = _launch(args, tmp_path / "killed", free_port())
  outs = _succeed(procs)
  assert "resuming" in outs[0][1]
  resumed = json.load(open(tmp_path / "killed" / "summary.json"))
  assert resumed["rows"] == span["rows"]  # same layout: bit-identical
  assert lines(tmp_path / "killed") == lines(tmp_path / "span")


def test_devices_per_process_uses_every_process():

  assert mesh_lib.devices_per_process(8, 2, 4) == 4
  assert mesh_lib.devices_per_process(8, 2, 2) == 2
  assert mesh_lib.devices_per_process(6, 2, 4) == 3
  assert mesh_lib.devices_per_process(3, 2, 8) == 2  # padded to 4
  assert mesh_lib.devices_per_process(1, 2, 8) == 1  # every process takes part
  assert mesh_lib.devices_per_process(40, 4, 8) == 8


@pytest.mark.slow  # ~10 s or more of compiling
def test_rewind_step_per_replica_equals_separate_runs(tmp_path):
  """Two rewind steps on one replica axis (staggered) give the runs that
  each rewind step gives alone."""
  from jaxticket.experiments.imp import imp
  from jaxticket.experiments import common
  from jaxticket.core.workdir import Workdir
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.imp.levels = 1
  cfg.imp.rewind = "step"
  cfg.seeds = 1
  together = imp.run_levels(
      common.setup(cfg, points=[{"imp.rewind_step": 5},
                             {"imp.rewind_step": 10}]),
      Workdir(str(tmp_path / "both"), "imp"), progress=False)
  np.testing.assert_array_equal(np.asarray(together.at_k.step), [5, 10])
  for i, k in enumerate((5, 10)):
    cfg.imp.rewind_step = k
    alone = imp.run_levels(common.setup(cfg), Workdir(str(tmp_path / f"k{k}"),
                                                   "imp"), progress=False)
    np.testing.assert_allclose(
        together.rows[1]["evaluation"].test_loss[i],
        alone.rows[1]["evaluation"].test_loss[0], rtol=1e-4)
    a = together.masks[1]["Dense_0"]["kernel"][i]
    b = alone.masks[1]["Dense_0"]["kernel"][0]
    assert (np.asarray(a) == np.asarray(b)).mean() > 0.99
