"""The command line, end to end and on bad input."""

import json
import os
import subprocess
import sys

import pytest

from jaxticket import cli
from jaxticket.core import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "mnist1d_lenet.py") + ":tiny"


@pytest.mark.slow  # ~15 s: a fresh interpreter imports jax
def test_imp_end_to_end_in_subprocess(tmp_path):
  wd = tmp_path / "run"
  cmd = [sys.executable, "-m", "jaxticket.cli", "imp", "--config", TINY,
         "--workdir", str(wd), "--config.model.width=0.25",
         "--config.imp.levels", "2", "--no-progress"]
  # No cache option or variable: the default cache under $XDG_CACHE_HOME.
  env = {k: v for k, v in os.environ.items() if k != runtime.CACHE_ENV}
  env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env=env)
  assert out.returncode == 0, out.stderr
  assert os.listdir(tmp_path / "xdg" / "jaxticket" / "jax")
  assert "| level | density" in out.stdout
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "accuracy_vs_density.png"):
    assert (wd / name).exists(), name
  assert (wd / "checkpoints" / "level_2").is_dir()
  summary = json.loads((wd / "summary.json").read_text())
  assert [r["level"] for r in summary["levels"]] == [0, 1, 2]
  for row in summary["levels"]:
    acc = row["test_accuracy"]
    assert set(acc) == {"mean", "std", "per_seed"} and len(acc["per_seed"]) == 2
    assert 0 <= acc["mean"] <= 1
  metrics = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().split("\n") if l]
  for key in ("level", "replica", "seed", "step", "density", "test_accuracy",
              "test_loss"):
    assert all(key in m for m in metrics)
  assert json.loads((wd / "config.json").read_text())["model"]["width"] == 0.25


def run_main(capsys, *argv):
  code = cli.main(list(argv))
  return code, capsys.readouterr()


@pytest.mark.parametrize("override,needle", [
    ("--config.model.name=rsenet20", "Did you mean 'resnet20'"),
    ("--config.data.name=cifar11", "cifar10"),
    ("--config.train.lrr=0.1", "Did you mean train.lr"),
    ("--config.imp.prune_fraction=1.5", "imp.prune_fraction=1.5"),
    ("--config.imp.prune_fraction=0", "must be in (0, 1)"),
    ("--config.train.optimizer=sgdd", "sgd, adam, adamw"),
    ("--config.imp.rewind=later", "init, step, lr, finetune"),
    ("--config.seeds=0", "seeds=0"),
    ("--config.train.lr=fast", "expected a value of type float"),
    ("--config.imp.rewind_step=100000", "imp.rewind_step"),
    ("--config.imp.rewind_step=-1", "imp.rewind=step or lr"),
    ("--config.imp.levels=-1", "imp.levels=-1"),
    ("--config.imp.scorer=magnitud", "magnitude"),
    ("--config.checkpoint.keep=0", "checkpoint.keep=0"),
    ("--config.checkpoint.every_steps=-5", "checkpoint.every_steps"),
    ("--config.data.val_fraction=1.0", "data.val_fraction"),
    ("--config.data.dir=/tmp", "only data.name in fashion_mnist"),
    ("--config.train.steps=0", "train.steps=0"),
    ("--config.train.batch_size=100000", "train.batch_size=100000"),
    ("--config.train.stop_on_divergence=maybe", "expected a value of type bool"),
    ("--config.masks.prunable=[", "--config.masks.prunable='(^|/)kernel$'"),
    ("--config.masks.output_layer=((", "not a valid regular expression"),
    ("--config.seed=-1", "must be >= 0"),
    ("--config.train.lr=inf", "finite"),
    ("--config.train.gamma=0", "must be > 0"),
])
def test_bad_config_gives_clear_error(tmp_path, capsys, override, needle):
  code, out = run_main(capsys, "imp", "--config", TINY, "--workdir",
                       str(tmp_path / "w"), override)
  assert code == 2
  key = override.split("=")[0][len("--config."):]
  assert key in out.err  # the message names the key ...
  assert needle in out.err and "Traceback" not in out.err  # ... and the fix
  assert not (tmp_path / "w" / "summary.json").exists()


def test_missing_config_file(tmp_path, capsys):
  code, out = run_main(capsys, "train", "--config", "nope.py", "--workdir",
                       str(tmp_path))
  assert code == 2 and "not found" in out.err


@pytest.mark.parametrize("text,needle", [
    (None, "not a Python file"),  # a file that is not .py at all
    ("def get_config(arg=None):\n  return (\n", "line 2"),
])
def test_unloadable_config_file(tmp_path, capsys, text, needle):
  path = tmp_path / ("bad.py" if text else "bad.md")
  path.write_text(text or "# notes\n")
  code, out = run_main(capsys, "train", "--config", str(path), "--workdir",
                       str(tmp_path / "w"))
  assert code == 2 and needle in out.err and str(path) in out.err
  assert "Traceback" not in out.err


def test_sanity_levels_beyond_imp_levels_refused(tmp_path, capsys):
  for levels, fix in (("(99,)", "--config.sanity.levels=12)"),
                      ("0,5", "sanity.levels=5")):
    code, out = run_main(capsys, "sanity", "--workdir", str(tmp_path / "w"),
                         f"--config.sanity.levels={levels}")
    assert code == 2 and "imp.levels=12" in out.err and fix in out.err
  code, out = run_main(capsys, "sanity", "--config", TINY, "--workdir",
                       str(tmp_path / "w"), "--config.sanity.levels=3")
  assert code == 2 and "[1, imp.levels=2]" in out.err
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("grid,needle", [
    ("train.lr=", "--grid 'train.lr=' gives no values: write --grid "
                  "KEY=V1,V2,... e.g. --grid train.lr=0.01,0.1"),
    ("train.lr", "--grid 'train.lr' gives no values"),
    ("train.lr=0.1,", "--grid 'train.lr=0.1,' has an empty value"),
    ("nokey=1,2", "--grid nokey=1,2: Unknown config key 'nokey'"),
    ("train.lr=abc", "--grid train.lr=abc: value 'abc': expected a value of "
                     "type float"),
])
def test_bad_grid_names_the_grid_option(tmp_path, capsys, grid, needle):
  code, out = run_main(capsys, "sweep", "--config", TINY, "--workdir",
                       str(tmp_path / "w"), "--grid", grid)
  assert code == 2 and needle in out.err and "--factor" not in out.err
  assert out.err.count("\n") == 1 and not (tmp_path / "w").exists()


def test_study_refuses_a_bad_value_before_any_compute(tmp_path, capsys):
  code, out = run_main(capsys, "study", "--workdir", str(tmp_path / "w"),
                       "--factor", "imp.levels=12,4")
  assert code == 2 and "--factor imp.levels=4: sanity.levels" in out.err
  assert not (tmp_path / "w").exists()


def test_workdir_that_is_a_file(tmp_path, capsys):
  (tmp_path / "f").write_text("")
  code, out = run_main(capsys, "train", "--config", TINY, "--workdir",
                       str(tmp_path / "f"), "--no-progress")
  assert code == 2 and "--workdir" in out.err and "File exists" in out.err


def test_compile_cache_default_and_off(tmp_path, monkeypatch):
  monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  default = str(tmp_path / "jaxticket" / "jax")
  assert runtime.compile_cache_dir() == default
  assert runtime.compile_cache_dir(enabled=False) is None
  assert runtime.compile_cache_dir("d") == "d"  # --compile-cache DIR
  monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty = unset (XDG spec)
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert runtime.compile_cache_dir() == str(
      tmp_path / "home" / ".cache" / "jaxticket" / "jax")
  for off in ("off", "", "0", "OFF", "none"):
    monkeypatch.setenv(runtime.CACHE_ENV, off)
    assert runtime.compile_cache_dir() is None
    assert runtime.compile_cache_dir("d") == "d"  # the option wins
  monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "env"))
  assert runtime.compile_cache_dir() == str(tmp_path / "env")
  args, _ = cli.parse(["train", "--no-compile-cache"])
  assert args.no_compile_cache and args.compile_cache is None
  with pytest.raises(SystemExit):  # one or the other
    cli.parse(["train", "--no-compile-cache", "--compile-cache", "d"])


def test_help_lists_commands(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert "imp" in out and "train" in out
  with pytest.raises(SystemExit):
    cli.main(["imp", "--help"])
  assert "train.lr" in capsys.readouterr().out


@pytest.mark.slow  # ~10 s or more of compiling
def test_finished_run_is_not_redone_and_other_config_refused(tmp_path, capsys):
  wd = str(tmp_path / "w")
  args = ["train", "--config", TINY, "--workdir", wd, "--no-progress",
          "--config.model.width=0.25"]
  assert run_main(capsys, *args)[0] == 0
  mtime = os.path.getmtime(os.path.join(wd, "summary.json"))
  code, out = run_main(capsys, *args)
  assert code == 0 and "nothing recomputed" in out.err
  assert os.path.getmtime(os.path.join(wd, "summary.json")) == mtime
  code, out = run_main(capsys, *args, "--config.train.lr=0.01")
  assert code == 2 and "different config" in out.err and "train.lr" in out.err
  assert "--config.KEY=OLD" in out.err  # how to resume that run instead


def test_substring_suggestion_and_no_workdir_on_error(tmp_path, capsys):
  wd = tmp_path / "never"
  code, out = run_main(capsys, "sanity", "--workdir", str(wd),
                       "--config.model.name=lenet")
  assert code == 2 and "Did you mean 'lenet_300_100'" in out.err
  code, out = run_main(capsys, "sanity", "--workdir", str(wd),
                       "--config.sanity.lrs=0")
  assert code == 2 and "sanity.lrs" in out.err
  assert not wd.exists()


def test_span_hosts_needs_distributed(tmp_path, capsys):
  code, out = run_main(capsys, "sweep", "--config", TINY, "--workdir",
                       str(tmp_path / "w"), "--grid", "train.lr=0.1,0.2",
                       "--span-hosts")
  assert code == 2 and "--span-hosts needs --distributed" in out.err
  assert not (tmp_path / "w").exists()


def test_start_imports_no_other_commands_modules(tmp_path):
  code = ("import sys; from jaxticket import cli; "
          "cli.main(['train', '--workdir', 'w', '--config.seeds=0']); "
          "print(sorted(m for m in ('scipy.stats', "
          "'jaxticket.experiments.sanity.sanity', "
          "'jaxticket.experiments.lmc.lmc') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": ROOT})
  assert out.stdout.strip() == "[]", out.stderr  # 0.4 s of scipy.stats


@pytest.mark.slow  # ~10 s or more of compiling
def test_train_imports_no_matplotlib(tmp_path):
  """``train`` writes no plot, so it does not pay pyplot's import (0.25 s)."""
  code = ("import sys; from jaxticket import cli; "
          "cli.main(['train', '--config', %r, '--workdir', 'w', "
          "'--config.model.width=0.25', '--no-progress', "
          "'--no-compile-cache']); "
          "print('matplotlib.pyplot' in sys.modules)" % TINY)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": ROOT})
  assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
  assert (tmp_path / "w" / "report.md").exists()


@pytest.mark.parametrize("override,needle", [
    ("--config.sanity.max_seeds=-1", "must be >= 0"),
    ("--config.sanity.seeds_per_round=0", "must be >= 1"),
    ("--config.sanity.resamples=-5", "0 = no bootstrap"),
])
def test_bad_sanity_seeding_keys(tmp_path, capsys, override, needle):
  code, out = run_main(capsys, "sanity", "--config", TINY, "--workdir",
                       str(tmp_path / "w"), override)
  assert code == 2
  assert override.split("=")[0][len("--config."):] in out.err
  assert needle in out.err and "Traceback" not in out.err
