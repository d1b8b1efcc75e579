"""`jaxticket benchmark`: rank statistics against references, the
leave-one-out flips of a table built to flip, bad configs, and the `:tiny`
run end to end (slow) with its resume."""

import json
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from jaxticket import cli, config
from jaxticket.core.workdir import WorkdirError
from jaxticket.experiments.benchmark import benchmark, ranking

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "benchmark.py") + ":tiny"


@pytest.mark.parametrize("seed", range(20))
def test_kendall_tau_b_equals_scipy_with_ties(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(3, 12))
  levels = int(rng.integers(2, n + 1))  # few levels = many ties
  x, y = rng.integers(0, levels, n), rng.integers(0, levels, n)
  if len(set(x)) == 1 or len(set(y)) == 1:
    assert np.isnan(ranking.kendall_tau_b(x, y))
    return
  want = scipy_stats.kendalltau(x, y, variant="b").statistic
  assert ranking.kendall_tau_b(x, y) == pytest.approx(want, abs=1e-12)


def test_kendall_tau_extremes():
  assert ranking.kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
  assert ranking.kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


@pytest.mark.parametrize("seed", range(5))
def test_ranks_with_ties_equal_scipy_average_ranks(seed):
  rng = np.random.default_rng(seed)
  v = rng.integers(0, 4, 9).astype(float)
  np.testing.assert_allclose(ranking.ranks(v),
                             scipy_stats.rankdata(-v, method="average"))
  np.testing.assert_allclose(ranking.ranks(v, higher_better=False),
                             scipy_stats.rankdata(v, method="average"))
  assert list(ranking.ranks([0.9, 0.7, 0.9])) == [1.5, 3.0, 1.5]


# Method "a" wins mnist1d and digits by 1 point, "b" wins fashion_mnist by
# 20 points: a has the most wins, b the best mean accuracy.
METHODS = ["a", "b", "c"]
DATASETS = ["mnist1d", "digits", "fashion_mnist"]
TABLE = np.array([[0.80, 0.90, 0.50],
                  [0.79, 0.89, 0.70],
                  [0.60, 0.60, 0.60]])


def test_aggregations_of_a_known_table():
  agg = ranking.aggregate(TABLE)
  np.testing.assert_allclose(agg["mean_accuracy"], TABLE.mean(1))
  np.testing.assert_allclose(agg["median_accuracy"], [0.80, 0.79, 0.60])
  np.testing.assert_allclose(agg["wins"], [2, 1, 0])
  # ranks per dataset: a 1,1,3; b 2,2,1; c 3,3,2
  np.testing.assert_allclose(agg["mean_rank"], [5 / 3, 5 / 3, 8 / 3])
  w = ranking.winners(TABLE, METHODS)
  assert w == {"mean_accuracy": ["b"], "mean_rank": ["a", "b"],
               "median_accuracy": ["a"], "wins": ["a"]}


def test_leave_one_out_flips_as_stated():
  loo = {(f["left_out"], f["aggregation"]): f
         for f in ranking.leave_one_out(TABLE, METHODS, DATASETS)}
  # without fashion_mnist, a wins everything, mean accuracy included
  f = loo["fashion_mnist", "mean_accuracy"]
  assert f["winner_full"] == ["b"] and f["winner_without"] == ["a"]
  assert f["winner_flips"]
  assert {"pair": ["a", "b"], "full": -1, "without": 1} in f["pair_flips"]
  # without fashion_mnist, c drops below... it already was; wins stay a's
  assert not loo["fashion_mnist", "wins"]["winner_flips"]
  # without one of a's wins: a and b tie on wins (1 each), a flips to a tie
  for d in ("mnist1d", "digits"):
    f = loo[d, "wins"]
    assert f["winner_without"] == ["a", "b"] and f["winner_flips"]
    assert f["pair_flips"] == [{"pair": ["a", "b"], "full": 1, "without": 0}]
    # mean accuracy: b stays the winner
    assert not loo[d, "mean_accuracy"]["winner_flips"]


def test_leave_one_out_of_one_dataset_is_empty():
  assert ranking.leave_one_out(TABLE[:, :1], METHODS, DATASETS[:1]) == []


def test_tau_matrix_between_datasets():
  per = [ranking.ranks(TABLE[:, j]) for j in range(3)]
  tau = ranking.tau_matrix(per)
  assert tau[0, 1] == 1.0  # mnist1d and digits rank a > b > c
  assert tau[0, 2] == pytest.approx(
      scipy_stats.kendalltau(per[0], per[2]).statistic)
  np.testing.assert_allclose(tau, tau.T)


def test_bootstrap_ranks():
  rng = np.random.default_rng(0)
  # a clearly best on every seed: rank 1 in every draw
  clear = np.stack([0.9 + 0.01 * rng.random(5), 0.5 + 0.01 * rng.random(5),
                    0.1 + 0.01 * rng.random(5)])
  b = ranking.bootstrap_ranks(clear, draws=300)
  assert b["rank"] == [1.0, 2.0, 3.0]
  assert b["rank_lo"] == b["rank_hi"] == [1.0, 2.0, 3.0]
  assert b["p_best"] == [1.0, 0.0, 0.0]
  # two methods that trade places seed by seed: the CI spans both ranks
  mixed = np.array([[0.8, 0.6, 0.8, 0.6], [0.6, 0.8, 0.6, 0.81]])
  b = ranking.bootstrap_ranks(mixed, draws=500)
  assert b["rank_lo"] == [1.0, 1.0] and b["rank_hi"] == [2.0, 2.0]
  assert 0 < b["p_best"][0] < 1
  # a diverged seed (NaN) is left out of that method's mean
  nan = np.array([[0.9, np.nan], [0.5, 0.5]])
  assert ranking.bootstrap_ranks(nan, draws=50)["rank"] == [1.0, 2.0]


@pytest.mark.parametrize("override,needle", [
    ("--config.benchmark.methods=imp,snipp", "Did you mean 'snip'"),
    ("--config.benchmark.methods=imp,imp", "repeats a method"),
    ("--config.benchmark.methods=imp,rigll", "Did you mean 'rigl'"),
    ("--config.benchmark.methods=imp,ticket", "is the 'imp' cell"),
    ("--config.benchmark.methods=imp,finetune", "not a benchmark cell"),
    ("--config.benchmark.datasets=mnist1d,cifar", "mnist1d, digits"),
    ("--config.benchmark.levels=0", "integer >= 1"),
    ("--config.benchmark.prune_fraction=1.0", "must be in (0, 1)"),
    ("--config.benchmark.lrs=0.1,-1", "must be > 0"),
    ("--config.benchmark.text_lrs=0.001,-1", "must be > 0"),
    ("--config.benchmark.text_optimizer=lion", "adamw"),
])
def test_bad_benchmark_config_gives_one_clear_line(tmp_path, capsys,
                                                   override, needle):
  code = cli.main(["benchmark", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), override])
  err = capsys.readouterr().err
  assert code == 2
  key = override.split("=")[0][len("--config."):]
  assert key in err and needle in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / "w" / "config.json").exists()


def test_sub_run_configs():
  cfg = config.load(TINY)
  cfg.benchmark.levels = (1, 3)
  assert benchmark.settings.densities(cfg) == [0.5, 0.125]
  imp = benchmark.imp_config(cfg, "digits", 0.3)
  assert (imp.data.name, imp.train.lr, imp.imp.levels) == ("digits", 0.3, 3)
  assert imp.imp.output_prune_fraction < 0 and imp.imp.rewind == "init"
  pai = benchmark.pai_config(cfg, "digits", 0.3)
  assert pai.pai.methods == ("random", "snip")
  assert pai.pai.densities == (0.5, 0.125) and pai.pai.checks == ()
  config.validate(imp)
  benchmark.validate(cfg)
  # the DST cells: the benchmark's levels, the IMP cell's tickets and keys
  cfg.benchmark.methods = ("imp", "random", "set", "rigl", "gmp")
  assert benchmark.pai_methods(cfg) == ["random"]
  assert benchmark.dst_methods(cfg) == ["set", "rigl", "gmp"]
  dst = benchmark.dst_config(cfg, "digits", 0.3, "/w/cells/imp__digits")
  assert dst.dst.methods == ("set", "rigl", "gmp")
  assert dst.dst.levels == (1, 3)
  assert dst.dst.imp_workdir == "/w/cells/imp__digits"
  assert (dst.data.name, dst.train.lr, dst.train.steps) == (
      "digits", 0.3, cfg.train.steps)
  for k in ("levels", "prune_fraction", "output_prune_fraction", "strategy",
            "schedule", "rewind", "rewind_step"):
    assert dst.imp[k] == imp.imp[k], k  # dst accepts the IMP cell's run
  dst_settings = benchmark.registry.load("dst").settings
  dst_settings.validate(dst)
  benchmark.validate(cfg)


@pytest.mark.slow
def test_tiny_benchmark_writes_the_contract_and_resumes(tmp_path,
                                                         monkeypatch):
  cfg = config.load(TINY)
  wd = str(tmp_path / "bench")
  s = benchmark.run(cfg, wd, progress=False)
  for f in ("config.json", "summary.json", "report.md", "rank_heatmap.png",
            "accuracy_vs_density.png"):
    assert os.path.isfile(os.path.join(wd, f)), f
  assert json.load(open(os.path.join(wd, "summary.json")))["command"] == \
      "benchmark"
  assert s.methods == ["imp", "random", "snip", "rigl"]
  assert {r["dataset"] for r in s.recipes} == {"mnist1d", "digits"}
  for r in s.recipes:  # the picked LR is the best on validation
    assert r["val"][f"{r['lr']:g}"] == max(r["val"].values())
  assert len(s.cells) == 4 * 2 * 1
  for c in s.cells:
    assert len(c["test"]) == 2 and all(0 <= v <= 1 for v in c["test"])
    if c["method"] in ("imp", "rigl"):  # the IMP ticket keeps (1 - p)^L,
      assert abs(c["achieved_density"] - c["density"]) < 0.01  # RigL too
  # the DST cell is the dst sub-run's rows, trained on the IMP cell's
  # tickets; its scores are the dst summary's per-seed test accuracies
  for d in ("mnist1d", "digits"):
    dst = json.load(open(os.path.join(wd, "cells", f"dst__{d}",
                                      "summary.json")))
    assert dst["imp_workdir"] == os.path.join(wd, "cells", f"imp__{d}")
    assert dst["steps"] == cfg.train.steps
    row = next(r for r in dst["rows"] if r["method"] == "rigl")
    cell = next(c for c in s.cells
                if c["method"] == "rigl" and c["dataset"] == d)
    assert cell["test"] == row["test_accuracy"]["per_seed"]
    assert cell["aurc_softmax"] == row["test_aurc_softmax"]["per_seed"]
  assert {sub["experiment"] for sub in s.subruns} == {"imp", "pai", "dst"}
  # the selective column is there for every method
  assert all(x["aurc_softmax"] is not None for x in s.selective)
  # ranks in the summary agree with the cells' means
  for block in s.dataset_ranks:
    acc = [r["accuracy"] for r in block["rows"]]
    assert [r["rank"] for r in block["rows"]] == list(ranking.ranks(acc))
  # every cell is its own resumable sub-run
  for sub in s.subruns:
    assert os.path.isfile(os.path.join(sub["workdir"], "summary.json"))
  # a finished run is returned without training anything
  boom = lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained"))
  monkeypatch.setattr(benchmark, "pick_recipe", boom)
  again = benchmark.run(cfg, wd, progress=False)
  assert again.cells == s.cells
  monkeypatch.undo()
  # a killed benchmark (no top summary) resumes from its finished cells
  lines = {sub["workdir"]: open(os.path.join(sub["workdir"],
                                             "metrics.jsonl")).read()
           for sub in s.subruns}
  os.remove(os.path.join(wd, "summary.json"))
  third = benchmark.run(cfg, wd, progress=False)
  assert third.cells == s.cells
  for path, text in lines.items():
    assert open(os.path.join(path, "metrics.jsonl")).read() == text
  # a different config is refused
  other = config.load(TINY)
  other.benchmark.lrs = (0.3,)
  with pytest.raises(WorkdirError, match="different config"):
    benchmark.run(other, wd, progress=False)


def test_float_noise_does_not_split_a_tie():
  a = np.float32([0.97, 0.9716]).astype(np.float64)
  assert list(ranking.ranks([a.mean(), a[::-1].mean() + 1e-13, 0.5])) == [
      1.5, 1.5, 3.0]


@pytest.mark.parametrize("loss", ["ce", "gambler"])
def test_selective_columns_are_the_cells_means(loss):
  """The softmax AURC column (and, under the gambler's loss, the abstain
  one) is the mean over a method's cells and seeds, NaN seeds left out."""
  cfg = config.load(TINY)
  cfg.task.loss = loss
  b = cfg.benchmark
  rng = np.random.default_rng(0)
  cells = []
  for m in b.methods:
    for d in b.datasets:
      cells.append({"method": m, "dataset": d, "density": 0.5,
                    "test": list(rng.uniform(0.5, 0.9, 2)),
                    "aurc_softmax": list(rng.uniform(0, 0.3, 2)),
                    "aurc": [float(rng.uniform(0, 0.3)), float("nan")]})
  sel = {s["method"]: s for s in benchmark.statistics(cfg, cells)["selective"]}
  for m in b.methods:
    mine = [c for c in cells if c["method"] == m]
    want = np.mean([v for c in mine for v in c["aurc_softmax"]])
    assert sel[m]["aurc_softmax"] == pytest.approx(want)
    if loss == "gambler":
      assert sel[m]["aurc_abstain"] == pytest.approx(
          np.mean([c["aurc"][0] for c in mine]))
      d = b.datasets[0]
      assert sel[m]["per_dataset_abstain"][d] == pytest.approx(
          next(c["aurc"][0] for c in mine if c["dataset"] == d))
    else:
      assert "aurc_abstain" not in sel[m]
