"""`jaxticket dst`: bad input names the key, the updaters follow the
config, the sub-IMP configs, and (slow) the whole run end to end, every
method at exactly the ticket's kept count, and a killed run resuming to the
same result."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxticket import cli, config, sparse_training
from jaxticket.core import checkpoint
from jaxticket.experiments.dst import dst, settings
from jaxticket.experiments.summaries import DstSummary
from jaxticket.core.workdir import Workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "mnist1d_lenet.py") + ":tiny"


@pytest.mark.parametrize("override,needle", [
    ("--config.dst.methods=rigl,rigll", "Did you mean 'rigl'"),
    ("--config.dst.methods=static_erk,magic", "Choose one of"),
    ("--config.dst.update_every=0", "must be >= 1"),
    ("--config.dst.drop_fraction=1.0", "must be in [0, 1)"),
    ("--config.dst.drop_fraction=-0.1", "must be in [0, 1)"),
    ("--config.dst.prune_end_fraction=0.05", "dst.prune_start_fraction"),
    ("--config.dst.death_rate=1.5", "must be in [0, 1)"),
    ("--config.dst.distribution=er", "erk"),
    ("--config.dst.sparse_init=fancy", "sparsity_aware"),
    ("--config.dst.levels=0", "IMP levels >= 1"),
    ("--config.imp.rewind=lr", "imp.rewind=init or step"),
    ("--config.imp.finetune_schedule=constant", "replay"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, capsys, override,
                                              needle):
  code = cli.main(["dst", "--config", TINY, "--workdir", str(tmp_path / "w"),
                   override])
  err = capsys.readouterr().err
  assert code == 2
  key = override.split("=")[0][len("--config."):]
  assert key in err and needle in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("size", [None, "tiny"])
@pytest.mark.parametrize("name", sorted(
    f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".py")))
def test_every_shipped_config_validates_for_dst(name, size):
  cfg = config.load(os.path.join(ROOT, "configs", name) + (
      f":{size}" if size else ""))
  config.validate(cfg)
  settings.validate(cfg)


def test_automatic_rewind_step_is_refused(tmp_path, capsys):
  code = cli.main(["dst", "--config", TINY, "--workdir", str(tmp_path / "w"),
                   "--config.imp.rewind=step", "--config.imp.rewind_step=-1"])
  err = capsys.readouterr().err
  assert code == 2 and "imp.rewind_step" in err and "fixed rewind step" in err


def test_updaters_follow_the_config():
  cfg = config.default_config()
  cfg.train.steps = 1000
  cfg.dst.update_every = 50
  ups = dst.updaters(cfg)
  assert list(ups) == ["static", "set", "rigl", "gmp", "granet"]
  rigl = ups["rigl"].inner
  assert (rigl.end_step, rigl.drop_fraction, rigl.update_every) == (750, 0.3,
                                                                    50)
  granet = ups["granet"].inner
  assert (granet.start_step, granet.end_step, granet.total_steps) == (
      100, 600, 1000)
  assert (granet.death_rate, granet.death_rate_min) == (0.5, 0.005)
  assert ups["gmp"].inner.start_step == 100
  cfg.dst.methods = ("static_erk", "rigl", "ticket")
  assert list(dst.updaters(cfg)) == ["static", "rigl"]
  # The finetune IMP run differs from the ticket's only in its rewind mode.
  ft = dst.imp_config(cfg, "finetune")
  assert ft.imp.rewind == "finetune" and ft.imp.levels == 8
  assert dst.imp_config(cfg, "ticket").imp.rewind == "init"


def test_help_names_the_command(capsys):
  with pytest.raises(SystemExit):
    cli.main(["dst", "--help"])
  out = capsys.readouterr().out
  assert "RigL" in out and "GraNet" in out and "--workdir" in out


def tiny(**values):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.dst.methods = ("static_erk", "rigl", "gmp", "granet", "granet_s2s",
                     "scratch_sai", "ticket", "finetune")
  return config.set_values(cfg, values)


@pytest.mark.slow
def test_dst_end_to_end_every_method_at_the_tickets_count(tmp_path):
  cfg = tiny()
  summary = dst.run(cfg, str(tmp_path), progress=False)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "accuracy_vs_step.png", "grad_norm_vs_step.png",
               "mask_updates.png", "barriers.png"):
    assert (tmp_path / name).exists(), name
  assert (tmp_path / "imp" / "summary.json").exists()
  assert (tmp_path / "imp_finetune" / "summary.json").exists()
  assert summary.levels == [1, 2]
  again = Workdir(str(tmp_path), "dst").finished(DstSummary)
  assert again.rows == summary.rows
  for r in summary.rows:
    # Every method ends at the ticket's exact kept count (the sparse-to-
    # sparse ones all along, GMP/GraNet at the end of their schedule).
    assert r["density_per_seed"] == pytest.approx(
        [r["target_density"]] * 2, abs=1e-12), r["method"]
    assert 0 <= r["test_accuracy"]["mean"] <= 1
    assert r["barrier_test"]["mean"] >= 0
  budget = {(r["level"], r["method"]): r["budget_steps"] for r in
            summary.rows}
  for level in (1, 2):
    assert budget[(level, "ticket")] == budget[(level, "finetune")] == (
        level + 1) * 40
    assert budget[(level, "rigl")] == 40
  # Gradient-norm logs of the updates: RigL's every 5 steps until step 30.
  rigl = [u for u in summary.updates if u["method"] == "rigl"][0]
  assert rigl["steps"] == [5, 10, 15, 20, 25, 30]
  assert np.mean(rigl["change"]) > 0  # grows where the gradient is large
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert {r["method"] for r in rows} == set(cfg.dst.methods)
  assert all("grad_norm" in r and "distance" in r for r in rows)
  text = (tmp_path / "report.md").read_text()
  assert "| finetune |" in text and "Against the ticket" in text


@pytest.mark.slow
def test_killed_dst_run_resumes_to_the_same_result(tmp_path):
  base = ["dst", "--config", TINY, "--config.model.width=0.25",
          "--config.dst.methods=static_erk,rigl,granet,ticket",
          "--config.checkpoint.every_steps=10", "--no-progress"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop(checkpoint.FAULT_ENV, None)
  run = lambda wd, extra=(), fault=None: subprocess.run(
      [sys.executable, "-m", "jaxticket.cli", *base, *extra, "--workdir",
       str(wd)], cwd=ROOT, capture_output=True, text=True, timeout=900,
      env={**env, **({checkpoint.FAULT_ENV: fault} if fault else {})})
  first = run(tmp_path / "a")
  assert first.returncode == 0, first.stderr
  imp_dir = f"--config.dst.imp_workdir={tmp_path / 'a' / 'imp'}"
  killed = run(tmp_path / "b", [imp_dir], fault="kill_after_save:2")
  assert killed.returncode == -signal.SIGKILL
  resumed = run(tmp_path / "b", [imp_dir])
  assert resumed.returncode == 0, resumed.stderr
  assert "resuming" in resumed.stderr
  a = json.load(open(tmp_path / "a" / "summary.json"))
  b = json.load(open(tmp_path / "b" / "summary.json"))
  for row_a, row_b in zip(a["rows"], b["rows"]):
    assert row_a["test_accuracy"] == row_b["test_accuracy"]
    assert row_a["barrier_test"] == row_b["barrier_test"]
  assert a["updates"] == b["updates"]


@pytest.mark.slow
def test_static_methods_only_compile_no_update(tmp_path):
  cfg = tiny(**{"dst.methods": ("ticket", "scratch"), "dst.levels": (2,)})
  summary = dst.run(cfg, str(tmp_path), progress=False)
  assert [r["method"] for r in summary.rows] == ["ticket", "scratch"]
  assert summary.updates == []
  assert not (tmp_path / "imp_finetune").exists()
