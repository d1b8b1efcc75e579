"""Every stage resumes: a `sanity` run SIGKILLed in its controls or
small-dense stage and an `lmc` run SIGKILLed while training its children
continue from their last checkpoint and end bit-identical to an
uninterrupted run (same device layout).

``JAXTICKET_FAULT=kill_after_save:N`` kills the process after its N-th
training checkpoint of the run (counted over all stages). The sanity run
below (40 steps, checkpoints every 10, 1 IMP level, one checked level):
saves 1-4 are IMP level 0 (steps 10, 20, 30, end), 5-8 level 1, 9-11 the
controls stage (steps 10, 20, 30), 12-14 the small-dense stage.
"""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxticket.core import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config", "configs/mnist1d_lenet.py:tiny",
        "--config.model.width=0.25", "--config.train.steps=40",
        "--config.train.eval_every=20", "--config.checkpoint.every_steps=10",
        "--config.checkpoint.keep=2", "--no-progress"]
SANITY = ["sanity", *TINY, "--config.imp.levels=1",
          "--config.sanity.levels=1", "--config.sanity.lrs=0.1,0.3"]
LMC = ["lmc", *TINY, "--config.lmc.rewind_steps=0,10",
       "--config.lmc.children=2", "--config.lmc.alphas=5"]


def cli(args, workdir, fault=None):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop(checkpoint.FAULT_ENV, None)
  if fault:
    env[checkpoint.FAULT_ENV] = fault
  return subprocess.run([sys.executable, "-m", "jaxticket.cli", *args,
                         "--workdir", str(workdir)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)


def results(workdir):
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  summary.pop("wall_time_s")
  summary.pop("timings_s", None)
  metrics = open(os.path.join(workdir, "metrics.jsonl")).read()
  stages = {name: open(os.path.join(workdir, "stages", name)).read()
            for name in sorted(os.listdir(os.path.join(workdir, "stages")))}
  return summary, metrics, stages


@pytest.fixture(scope="module")
def sanity_reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sanity_uninterrupted")
  out = cli(SANITY, workdir)
  assert out.returncode == 0, out.stderr
  return results(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill_after_save:10",   # controls, step 20
                                   "kill_after_save:13"])  # small dense
def test_sanity_killed_in_a_stage_resumes_it(tmp_path, sanity_reference,
                                             fault):
  out = cli(SANITY, tmp_path, fault)
  assert out.returncode == -signal.SIGKILL, out.stderr
  assert not (tmp_path / "summary.json").exists()
  out = cli(SANITY, tmp_path)
  assert out.returncode == 0, out.stderr
  assert "resuming stage level_1_" in out.stderr  # not recomputed from 0
  got = results(tmp_path)
  assert got[0] == sanity_reference[0]
  assert got[1] == sanity_reference[1]  # metrics.jsonl line for line
  assert got[2] == sanity_reference[2]  # each stage's final evaluation


@pytest.mark.slow
def test_lmc_killed_in_its_children_resumes_them(tmp_path_factory):
  reference = tmp_path_factory.mktemp("lmc_uninterrupted")
  assert cli(LMC, reference).returncode == 0
  killed = tmp_path_factory.mktemp("lmc_killed")
  # Children start at k = 0 and 10; saves at clock 10, 20, 30.
  out = cli(LMC, killed, "kill_after_save:2")
  assert out.returncode == -signal.SIGKILL, out.stderr
  out = cli(LMC, killed)
  assert out.returncode == 0, out.stderr
  assert "resuming stage lmc_children" in out.stderr
  a, b = results(reference), results(killed)
  assert a == b
  final = lambda d: checkpoint.load_tree(
      os.path.join(d, "checkpoints", "stages", "lmc_children_final"))
  for x, y in zip(jax.tree.leaves(final(reference)),
                  jax.tree.leaves(final(killed))):
    np.testing.assert_array_equal(x, y)
