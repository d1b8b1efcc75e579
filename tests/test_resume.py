"""Resumable runs: SIGKILL at any moment, resume, and end bit-identical to an
uninterrupted run; corrupt checkpoints fall back; divergence is recorded.

The CLI runs in subprocesses; ``JAXTICKET_FAULT`` makes the process SIGKILL
itself after (or while) writing its N-th training checkpoint. With 40 steps,
checkpoints every 10 and 2 IMP levels, checkpoints 1-4 belong to level 0
(steps 10, 20, 30 and its end), 5-8 to level 1, 9-12 to level 2.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxticket import config
from jaxticket.core import checkpoint
from jaxticket.experiments.imp import imp
from jaxticket.experiments import common
from jaxticket.core import loop as loop_lib
from jaxticket.core.masks import path_str
from jaxticket.core.workdir import WorkdirError

ARGS = ["imp", "--config", "configs/mnist1d_lenet.py:tiny",
        "--config.model.width=0.25", "--config.train.steps=40",
        "--config.train.eval_every=20", "--config.imp.levels=2",
        "--config.checkpoint.every_steps=10", "--config.checkpoint.keep=2",
        "--config.imp.rewind=step", "--config.imp.rewind_step=5",
        "--no-progress"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(workdir, fault=None, extra=()):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop(checkpoint.FAULT_ENV, None)
  if fault:
    env[checkpoint.FAULT_ENV] = fault
  return subprocess.run(
      [sys.executable, "-m", "jaxticket.cli", *ARGS, *extra,
       "--workdir", str(workdir)], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=600)


def results(workdir):
  """Everything a run leaves that must not depend on interruptions."""
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  summary.pop("wall_time_s")
  metrics = open(os.path.join(workdir, "metrics.jsonl")).read()
  levels = [imp.load_level(str(workdir), l) for l in range(3)]
  return summary, metrics, levels


def assert_same(a, b):
  assert a[0] == b[0]  # summary
  assert a[1] == b[1]  # metrics.jsonl, line for line
  for x, y in zip(jax.tree.leaves(a[2]), jax.tree.leaves(b[2])):
    np.testing.assert_array_equal(x, y)  # masks, params, statistics


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  out = cli(workdir)
  assert out.returncode == 0, out.stderr
  return results(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill_after_save:2",    # mid level 0,
                                   #                         at an eval step
                                   "kill_after_save:4",    # level 0's end
                                   "kill_during_save:6",   # writing, level 1
                                   "kill_after_save:12"])  # after the last
def test_killed_run_resumes_bit_identical(tmp_path, reference, fault):
  out = cli(tmp_path, fault)
  assert out.returncode == -signal.SIGKILL, out.stderr
  assert not os.path.exists(tmp_path / "summary.json")
  out = cli(tmp_path)
  assert out.returncode == 0, out.stderr
  assert "resuming" in out.stderr
  assert_same(results(tmp_path), reference)


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back(tmp_path, reference):
  assert cli(tmp_path, "kill_after_save:7").returncode == -signal.SIGKILL
  train_dir = tmp_path / "checkpoints" / "train"
  newest = max(int(p) for p in os.listdir(train_dir) if p.isdigit())
  for f in glob.glob(str(train_dir / str(newest) / "**" / "*"),
                     recursive=True):
    if os.path.isfile(f):
      with open(f, "wb") as fh:
        fh.write(b"garbage")
  out = cli(tmp_path)
  assert out.returncode == 0, out.stderr
  assert f"checkpoint {newest}" in out.stderr and "falling back" in out.stderr
  assert_same(results(tmp_path), reference)


@pytest.mark.slow
def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
  assert cli(tmp_path, "kill_after_save:2").returncode == -signal.SIGKILL
  train_dir = tmp_path / "checkpoints" / "train"
  for f in glob.glob(str(train_dir / "*" / "**" / "*"), recursive=True):
    if os.path.isfile(f):
      open(f, "wb").close()
  out = cli(tmp_path)
  assert out.returncode == 2
  assert "No usable training checkpoint" in out.stderr
  assert "Traceback" not in out.stderr


def test_divergent_replica_is_recorded_and_left_out(tmp_path):
  """One LR of a sanity-style grid diverges: the run goes on, the replica
  is marked with its step, and means use the others."""
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.imp.levels = 0
  s = common.setup(cfg)
  s.hparams = s.hparams._replace(lr=s.hparams.lr.at[1].set(1e6))
  s.lrs = [float(x) for x in s.hparams.lr]

  from jaxticket.core.workdir import Workdir
  wd = Workdir(str(tmp_path), "imp")
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  ones = common.dense_masks(cfg, init.params)
  _, row = common.train_level(s, wd, 0, init, ones, s.hparams, s.trainer,
                           progress=False)
  assert [d["seed"] for d in row["diverged"]] == [s.seeds[1]]
  assert 0 <= row["diverged"][0]["step"] < cfg.train.steps
  acc = row["evaluation"].test_accuracy
  assert row["test_accuracy"]["mean"] == pytest.approx(float(acc[0]))
  assert row["test_accuracy"]["per_seed"][1] is None
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert any(r["diverged"] and r["diverged_at"] is not None for r in rows)
  # With stop_on_divergence the run stops with a message naming the fix.
  cfg.train.stop_on_divergence = True
  with pytest.raises(common.DivergenceError, match="train.lr"):
    common.train_level(s, wd, 0, s.trainer.init(loop_lib.replica_keys(s.seeds)),
                    ones, s.hparams, s.trainer, progress=False)


def test_processes_that_do_not_write_leave_no_files(tmp_path, monkeypatch):
  """In a host-spanning job only process 0 writes: the others' workdir,
  metric and checkpoint writes are no-ops (they compute the same values)."""
  from jaxticket.core import runtime
  from jaxticket.core.workdir import Workdir
  monkeypatch.setattr(runtime, "writes_files", lambda: False)
  wd = Workdir(str(tmp_path / "w"), "imp")
  wd.claim(config.default_config("tiny"))
  wd.log_metrics([{"step": 1}])
  wd.write_summary({"levels": []})
  checkpoint.save_tree(wd.file("checkpoints", "init"), {"a": np.ones(3)})
  ckpts = checkpoint.TrainCheckpoints(wd.file("checkpoints", "train"))
  ckpts.save(1, {"a": np.ones(3)})
  ckpts.close()
  assert ckpts.positions() == []
  files = [f for _, _, fs in os.walk(tmp_path) for f in fs]
  assert files == [] and wd.finished_summary() is None


# --------------------------------------------------------------------------
# Checkpoint format: the tree itself (orbax), and the flat layout before it.

def legacy_flatten(tree):
  """The flat layout of earlier versions (their ``checkpoint.flatten``, its
  key naming inlined, kept to write old-format checkpoints): host arrays
  keyed by dotted, sanitized leaf path; PRNG keys as their raw key data."""
  out = {}
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    name = re.sub(r"[^A-Za-z0-9_.]", "_", path_str(path).replace("/", "."))
    # Before the optax chain, the optimizer state was one transform's
    # state: ``opt_state.trace...`` where the chain now has
    # ``opt_state.1.trace...`` (its other entries hold no arrays).
    name = re.sub(r"\.opt_state\.\d+\.", ".opt_state.", name)
    out[name] = np.asarray(jax.device_get(x))
  return out


@flax.struct.dataclass
class State:
  params: dict
  key: jax.Array
  stats: dict
  extra: tuple = ()


def sample_tree():
  """Typed PRNG keys, ``None`` leaves, empty subtrees, a dataclass node."""
  keys = jax.random.split(jax.random.key(3), 2)
  return {"level": jnp.asarray(1, jnp.int32),
          "state": State(params={"w": jnp.arange(6.).reshape(2, 3),
                                 "b": jnp.ones((2,), jnp.bfloat16)},
                         key=keys, stats={},
                         extra=(jax.random.key(4, impl="rbg"), ())),
          "mask": {"w": jnp.array([[True, False, True]] * 2), "b": None}}


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      assert jax.random.key_impl(x) == jax.random.key_impl(y)
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    np.testing.assert_array_equal(x, y)


def test_checkpoint_round_trip_and_legacy_layout(tmp_path):
  """The tree comes back exactly (keys typed, None and empty nodes kept),
  from the current layout and from the flat one of earlier versions; an
  old-format checkpoint is read, never deleted."""
  tree = sample_tree()
  ckpts = checkpoint.TrainCheckpoints(str(tmp_path), keep=5)
  ckpts.save(1, tree)
  ckpts.manager.save(2, args=ocp.args.StandardSave(legacy_flatten(tree)))
  ckpts.close()
  ckpts = checkpoint.TrainCheckpoints(str(tmp_path), keep=5)  # a new process
  assert_trees_equal(ckpts.restore(1, tree), tree)
  assert_trees_equal(ckpts.restore(2, tree), tree)
  assert ckpts.restore_latest(tree)[0] == 2
  assert ckpts.positions() == [1, 2]
  ckpts.close()


@pytest.mark.parametrize("change", ["shape", "dtype", "missing", "extra"])
def test_checkpoint_unlike_the_state_is_unreadable(tmp_path, change):
  """A checkpoint whose arrays differ from the run's state (shape, dtype,
  a missing or an extra array) is a clear CheckpointError, in both
  layouts; restore_latest stops there and deletes nothing."""
  tree = sample_tree()
  template = sample_tree()
  if change == "shape":
    template["level"] = jnp.zeros((2,), jnp.int32)
  elif change == "dtype":
    template["mask"]["w"] = template["mask"]["w"].astype(jnp.float32)
  elif change == "missing":
    template["mask"]["b"] = jnp.zeros((2,))
  else:
    del template["level"]
  ckpts = checkpoint.TrainCheckpoints(str(tmp_path), keep=5)
  ckpts.manager.save(1, args=ocp.args.StandardSave(legacy_flatten(tree)))
  ckpts.save(2, tree)
  message = {"shape": r"'level' is int32\[\] in the checkpoint but "
                      r"int32\[2\] in this run's state",
             "dtype": "'mask.w' is bool.* but float32",
             "missing": "lacks 'mask.b'",
             "extra": "holds 'level'"}[change]
  with pytest.raises(checkpoint.CheckpointError, match=message):
    ckpts.restore(2, template)
  if change != "extra":  # the flat layout was read leniently: extras pass
    with pytest.raises(checkpoint.CheckpointError, match=message):
      ckpts.restore(1, template)
  # A readable checkpoint of another state is never deleted as damaged.
  with pytest.raises(checkpoint.CheckpointError,
                     match="different training state.*nothing was deleted"):
    ckpts.restore_latest(template, print)
  assert ckpts.positions() == [1, 2]
  ckpts.close()


LEGACY_RUN = """
import os, signal, sys
import orbax.checkpoint as ocp
sys.path.insert(0, "tests")
from test_resume import legacy_flatten
from jaxticket import cli
from jaxticket.core import checkpoint

def save(self, position, tree):  # an earlier version's save
  self.manager.wait_until_finished()
  self.manager.save(position, args=ocp.args.StandardSave(legacy_flatten(tree)),
                    force=True)
  self.manager.wait_until_finished()
  checkpoint.TrainCheckpoints.saves += 1
  if checkpoint.TrainCheckpoints.saves == int(os.environ["KILL_AFTER"]):
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint.TrainCheckpoints.save = save
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_run_killed_with_old_format_checkpoints_resumes(tmp_path, reference):
  """Checkpoints written in the flat layout of earlier versions: a killed
  run resumes from them and ends bit-identical."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "KILL_AFTER": "6"}
  env.pop(checkpoint.FAULT_ENV, None)
  out = subprocess.run([sys.executable, "-c", LEGACY_RUN, *ARGS, "--workdir",
                        str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == -signal.SIGKILL, out.stderr
  train_dir = tmp_path / "checkpoints" / "train"
  newest = max(int(p) for p in os.listdir(train_dir) if p.isdigit())
  ckpts = checkpoint.TrainCheckpoints(str(train_dir))
  assert "state.data_key" in ckpts.manager.item_metadata(newest).tree  # flat
  ckpts.close()
  out = cli(tmp_path)
  assert out.returncode == 0, out.stderr
  assert f"(checkpoint {newest})" in out.stderr
  assert "falling back" not in out.stderr
  assert_same(results(tmp_path), reference)


def test_workdir_of_an_earlier_version_is_accepted(tmp_path):
  """A config.json written before a key existed (here data.dir, added after
  the run) is the same config: the finished run is returned, not refused;
  a real change is still refused."""
  cfg = config.default_config("tiny")
  cfg.imp.levels = 1
  first = imp.run(cfg, str(tmp_path), progress=False)
  path = tmp_path / "config.json"
  old = json.loads(path.read_text())
  del old["data"]["dir"]
  path.write_text(json.dumps(old))
  again = imp.run(cfg, str(tmp_path), progress=False)
  assert again.levels == first.levels
  cfg.train.lr = 0.01
  with pytest.raises(WorkdirError, match="train.lr"):
    imp.run(cfg, str(tmp_path), progress=False)
