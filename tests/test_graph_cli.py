"""``jaxticket graph`` as a user runs it: end to end on the tiny config
(the contract's files, resume, refusal), bad input as one line naming the
key, and --help."""

import json

import numpy as np
import pytest

from jaxticket import cli, config
from jaxticket.experiments.graph import settings
from jaxticket.experiments.summaries import GraphSummary

TINY = "configs/graph.py:tiny"
#: An even smaller run: one graph, one round, short training.
SMALL = ["--config.graph.graphs=karate", "--config.graph.steps=10",
         "--config.graph.eval_every=5", "--config.graph.rounds=1",
         "--config.graph.spectral.depths=2",
         "--config.graph.methods=ugs,random,spectral"]


@pytest.fixture(autouse=True)
def _root(monkeypatch):
  import pathlib
  monkeypatch.chdir(pathlib.Path(__file__).resolve().parent.parent)


@pytest.mark.slow  # ~30 s: compiles the search and the fixed-mask programs
def test_graph_end_to_end_resume_and_refusal(tmp_path, capsys):
  wd = tmp_path / "g"
  argv = ["graph", "--config", TINY, "--workdir", str(wd), "--no-progress",
          *SMALL]
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert "karate" in out and "Tickets" in out
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "accuracy_vs_edges.png", "accuracy_vs_weights.png",
               "spectral_gap.png", "depth.png"):
    assert (wd / name).exists(), name
  s = GraphSummary.from_json(json.loads((wd / "summary.json").read_text()))
  settings_ = {(r["setting"], r["round"]) for r in s.tickets}
  assert settings_ == {("dense", 0), ("ugs", 1), ("random", 1),
                       ("spectral", 1)}
  for r in s.tickets:
    acc = r["test_accuracy"]
    assert acc["n"] == 2 and 0 <= acc["mean"] <= 1
    if r["round"] == 1:  # 5% of 78 edges = 4 pruned, 20% of the weights
      assert r["edge_density"] == pytest.approx(74 / 78)
      assert r["weight_density"] == pytest.approx(0.8, abs=0.01)
  sp = {r["setting"] for r in s.spectral}
  assert sp == {"original", "spectral_delete", "random_delete",
                "spectral_add"}
  for r in s.spectral:
    assert 0 < r["rayleigh"]["mean"] <= 2
  curve = s.gap_curves["karate"]
  assert curve["delete"]["gaps"][1] > curve["delete"]["gaps"][0]
  assert (wd / "masks" / "tickets_karate_gcn_s0_ugs_r1.npz").exists()
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().split(
      "\n") if l]
  assert {r["stage"] for r in rows} >= {"tickets_karate_gcn_s0_ugs_r1",
                                        "fixed_karate_gcn_s0_d2"}
  # A finished run is returned as it is.
  assert cli.main(argv) == 0
  assert "nothing recomputed" in capsys.readouterr().err
  # Without its summary the run resumes from its stages: nothing trains
  # again and the results are the same.
  first = (wd / "summary.json").read_text()
  (wd / "summary.json").unlink()
  n = len(rows)
  assert cli.main(argv) == 0
  again = GraphSummary.from_json(json.loads((wd / "summary.json").read_text()))
  assert again.tickets == s.tickets and again.spectral == s.spectral
  assert len((wd / "metrics.jsonl").read_text().splitlines()) == n
  del first
  # As if killed during the fixed-mask program: its stage is missing. The
  # rerun trains that program only (the UGS masks are read back), logs
  # its rows once and reproduces the results.
  masks = wd / "masks" / "tickets_karate_gcn_s0_ugs_r1.npz"
  stamp = masks.stat().st_mtime_ns
  (wd / "summary.json").unlink()
  (wd / "stages" / "fixed_karate_gcn_s0_d2.json").unlink()
  assert cli.main(argv) == 0
  again = GraphSummary.from_json(json.loads((wd / "summary.json").read_text()))
  assert masks.stat().st_mtime_ns == stamp
  assert len((wd / "metrics.jsonl").read_text().splitlines()) == n
  for a, b in zip(again.tickets, s.tickets):
    assert a["test_accuracy"]["values"] == pytest.approx(
        b["test_accuracy"]["values"], abs=1e-6)
  # Another config in the same workdir is refused.
  capsys.readouterr()
  assert cli.main(argv + ["--config.graph.rounds=2"]) == 2
  assert "different config" in capsys.readouterr().err


@pytest.mark.parametrize("override,needle", [
    ("--config.graph.graphs=karate,corra", "Unknown graph 'corra' "
     "(graph.graphs). Did you mean 'cora'?"),
    ("--config.graph.models=gat", "Unknown graph model 'gat'"),
    ("--config.graph.edge_fraction=1.5", "graph.edge_fraction=1.5 is out"),
    ("--config.graph.weight_fraction=-0.1", "graph.weight_fraction=-0.1"),
    ("--config.graph.spectral.delete_fractions=0.2,1.2",
     "graph.spectral.delete_fractions=1.2"),
    ("--config.graph.spectral.delete_fractions=0.9",
     "graph.spectral.delete_fractions=0.9 deletes 70 of the 78 edges of "
     "karate, but at most 45"),
    ("--config.graph.rounds=20", "graph.rounds=20 at graph.edge_fraction="
     "0.05 prunes 51 of the 78 edges of karate"),
    ("--config.graph.methods=ugs,magic", "Unknown method 'magic'"),
    ("--config.graph.depth=1", "graph.depth=1"),
    ("--config.graph.train_fraction=0.85", "graph.val_fraction"),
    ("--config.graph.split=public", "graph.split=public: karate has no "
     "public split"),
    ("--config.graph.graphs=pubmed", "graph.dir"),
    ("--config.graph.spectral.depths=()", "graph.spectral.depths=() is "
     "empty"),
])
def test_bad_graph_input_is_one_line(override, needle, capsys, tmp_path):
  code = cli.main(["graph", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), "--config.graph.graphs=karate",
                   override])
  err = capsys.readouterr().err
  assert code == 2, err
  assert needle in err, err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "w").exists()  # refused before touching anything


def test_default_graph_section_is_valid():
  cfg = config.default_config()
  settings.validate(cfg)
  tiny = config.load(TINY)
  settings.validate(tiny)
  assert tiny.graph.graphs == ("karate",)


def test_help_names_the_command_and_its_keys(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["graph", "--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert "UGS" in out and "graph.edge_fraction" in out
  assert "graph.spectral.delete_fractions" in out
  assert cli.main(["list"]) == 0
  assert "graph" in capsys.readouterr().out


@pytest.mark.slow  # three small runs in subprocesses, ~1-2 min
def test_graph_resumes_after_sigkill(tmp_path):
  """SIGKILLed once its UGS round is stored (while the fixed-mask program
  compiles or trains), the same command finishes the run with the results
  of an uninterrupted one; the finished round is not trained again."""
  import os
  import signal
  import subprocess
  import sys
  import time
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}

  def start(wd):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxticket.cli", "graph", "--config", TINY,
         "--workdir", str(wd), "--no-progress", *SMALL], cwd=root, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

  ref, killed = tmp_path / "ref", tmp_path / "killed"
  p = start(ref)
  assert p.wait(timeout=600) == 0, p.stderr.read()
  p = start(killed)
  stage = killed / "stages" / "tickets_karate_gcn_s0_ugs_r1.json"
  deadline = time.time() + 600
  while not stage.exists() and p.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert p.poll() is None, "the run ended before it could be killed"
  os.kill(p.pid, signal.SIGKILL)
  p.wait()
  assert not (killed / "summary.json").exists()
  stamp = stage.stat().st_mtime_ns
  p = start(killed)
  assert p.wait(timeout=600) == 0, p.stderr.read()
  assert stage.stat().st_mtime_ns == stamp  # round 1 was read back
  a, b = (GraphSummary.from_json(json.loads((w / "summary.json").read_text()))
          for w in (ref, killed))
  assert a.tickets == b.tickets and a.spectral == b.spectral
  rows = lambda w: sorted((w / "metrics.jsonl").read_text().splitlines())
  assert rows(ref) == rows(killed)  # the killed program's rows only once
