"""`jaxticket pai`: one-line errors naming the key, the training plan,
Su et al.'s scoring data, one program per shape, and (slow) the whole run
end to end with its files, the IMP reference and resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import cli, config
from jaxticket.core import masks
from jaxticket.core.checks import ConfigError
from jaxticket.experiments import common
from jaxticket.experiments.pai import methods, pai, scoring
from jaxticket.experiments.summaries import PaiSummary
from jaxticket.pruning import controls

TINY = "configs/mnist1d_lenet.py:tiny"


def tiny(**overrides):
  cfg = config.load(TINY)
  return config.set_values(cfg, overrides)


@pytest.mark.parametrize("override,needle", [
    ("--config.pai.methods=snap", "Did you mean 'snip'"),
    ("--config.pai.methods=snip,snip", "repeats a method"),
    ("--config.pai.densities=0.5,1.0", "must be in (0, 1)"),
    ("--config.pai.densities=0", "pai.densities=0"),
    ("--config.pai.densities=-0.1", "must be in (0, 1)"),
    ("--config.pai.imp_workdir=/nonexistent/imp", "no finished imp or sanity"),
    ("--config.pai.checks=shufle", "shuffle"),
    ("--config.pai.init=later", "scored, fresh"),
    ("--config.pai.synflow_rounds=0", "pai.synflow_rounds=0"),
    ("--config.pai.gem_lr=0", "must be > 0"),
    ("--config.pai.gem_lambda=-1e-4", "must be >= 0"),
    ("--config.pai.gem_freeze_every=0", "epochs between freezes"),
    ("--config.pai.gem_final=soft", "flag, rounded"),
    ("--config.pai.gem_schedule=cosin", "Did you mean 'cosine'"),
    ("--config.pai.gem_steps=-1", "0 = train.steps"),
])
def test_bad_pai_config_gives_one_clear_line(tmp_path, capsys, override,
                                             needle):
  code = cli.main(["pai", "--config", TINY, "--workdir", str(tmp_path / "w"),
                   override])
  err = capsys.readouterr().err
  assert code == 2
  key = override.split("=")[0][len("--config."):]
  assert key in err and needle in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / "w" / "config.json").exists()


def test_gem_freezes_that_do_not_fit_give_one_clear_line(tmp_path, capsys):
  """The freeze period is in epochs: checked once the data is loaded, still
  before the workdir is claimed."""
  code = cli.main(["pai", "--config", TINY, "--workdir", str(tmp_path / "w"),
                   "--config.pai.methods=gem_miner",
                   "--config.pai.gem_freeze_every=100"])
  err = capsys.readouterr().err
  assert code == 2 and "Traceback" not in err
  assert "pai.gem_freeze_every=100" in err and "no freeze" in err
  assert len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / "w" / "config.json").exists()


def test_smart_ratio_skips_densities_it_cannot_build(tmp_path):
  cfg = tiny(**{"pai.methods": ("smart_ratio", "random"),
                "pai.densities": (0.1, 0.001)})
  shapes = {"Dense_0/kernel": (40, 75), "Dense_1/kernel": (75, 25),
            "head/kernel": (25, 10)}
  paths = list(shapes)
  dens, skipped = pai.densities_of(cfg, shapes, paths)
  assert dens == {"smart_ratio": [0.1], "random": [0.1, 0.001]}
  assert skipped[0]["method"] == "smart_ratio" and \
      skipped[0]["density"] == 0.001
  plan = pai.training_plan(cfg, [0], dens)
  assert not [p for p in plan if p["method"] == "smart_ratio"
              and p["density"] == 0.001]
  cfg.pai.densities = (0.001,)
  with pytest.raises(ConfigError, match="pai.densities.*smart_ratio"):
    pai.densities_of(cfg, shapes, paths)


def test_help_names_every_method(capsys):
  with pytest.raises(SystemExit):
    cli.main(["pai", "--help"])
  out = " ".join(capsys.readouterr().out.split())
  for name in methods.METHODS:
    assert name in out
  assert "jaxticket pai --config configs/mnist1d_lenet.py:tiny" in out


def test_training_plan_covers_every_mask_and_check():
  cfg = tiny(**{"pai.methods": ("random", "snip"),
                "pai.densities": (0.1, 0.01)})
  plan = pai.training_plan(cfg, [0, 1])
  count = lambda **w: sum(all(p[k] == v for k, v in w.items()) for p in plan)
  assert count(setting="dense") == 2
  for m in ("random", "snip"):
    for st in ("pai", "shuffle", "reinit"):
      assert count(method=m, setting=st) == 4  # 2 densities x 2 seeds
  for st in ("random_labels", "shuffled_pixels", "half_data"):
    assert count(method="snip", setting=st) == 4
    assert count(method="random", setting=st) == 0  # data-free
  assert {p["init"] for p in plan if p["setting"] == "reinit"} == {"fresh"}
  assert {p["init"] for p in plan if p["setting"] == "pai"} == {"scored"}
  cfg.pai.init = "fresh"  # snip-public: train a separately initialized net
  plan = pai.training_plan(cfg, [0])
  assert {p["init"] for p in plan if p["setting"] == "pai"} == {"fresh"}
  assert {p["init"] for p in plan if p["setting"] == "reinit"} == {"fresh2"}


def test_scoring_variants_corrupt_what_su_et_al_corrupt():
  cfg = tiny()
  s = common.setup(cfg)
  data = s.data
  x, y = scoring.examples(data, 0, "clean", 40, True)
  assert np.bincount(y, minlength=10).tolist() == [4] * 10  # per class
  x2, y2 = scoring.examples(data, 0, "clean", 40, True)
  np.testing.assert_array_equal(x, x2)  # seeded
  _, yr = scoring.examples(data, 0, "random_labels", 40, True)
  assert (yr != y).mean() > 0.5  # labels replaced at random
  xp, _ = scoring.examples(data, 0, "shuffled_pixels", 40, True)
  xr, _ = scoring.examples(data, 0, "random_labels", 40, True)
  np.testing.assert_array_equal(xr, x)  # the same examples, labels corrupted
  # each example's values are a permutation of the original example's
  np.testing.assert_allclose(np.sort(xp.reshape(40, -1), 1),
                             np.sort(xr.reshape(40, -1), 1))
  assert not np.allclose(xp, xr)
  xh, yh = scoring.examples(data, 0, "half_data", 40, True)
  assert len(yh) == 20
  idx = scoring.draw(data.train_y, np.arange(10), 5, 10, False,
                     np.random.default_rng(0))
  assert set(idx) <= set(range(10)) and len(idx) == 5


@pytest.mark.slow
def test_masks_and_training_one_program_per_shape(tmp_path):
  """All methods' masks at every density exact; all settings of the plan
  train in ONE compiled program."""
  from jaxticket.core.workdir import Workdir
  cfg = tiny(**{"pai.methods": ("snip", "hybrid"),
                "pai.densities": (0.1, 0.02), "pai.checks": ("shuffle",
                                                             "reinit",
                                                             "half_data"),
                "train.steps": 10, "train.eval_every": 10})
  seeds = pai.seeds_of(cfg)
  s = common.setup(cfg)
  inits = pai.make_inits(s, seeds)
  one = masks.ones(jax.tree.map(lambda a: a[0], inits.scored.params))
  paths = pai.forward_order(s, one)
  assert paths == ["Dense_0/kernel", "Dense_1/kernel", "head/kernel"]
  wd = Workdir(str(tmp_path), "pai")
  bank = pai.all_masks(cfg, s, wd, inits, seeds, one, paths, False)
  assert set(bank) == {"snip/clean", "snip/half_data", "snip/shuffle",
                       "hybrid/clean", "hybrid/shuffle"}
  total = masks.count(one)[1]
  kept = np.asarray(jax.vmap(lambda m: masks.count(m)[0])(bank["snip/clean"]))
  np.testing.assert_array_equal(kept, [round(0.1 * total)] * 2 +
                                [round(0.02 * total)] * 2)
  # the shuffle keeps each layer's count, the hybrid its smart-ratio counts
  for a, b in zip(jax.tree.leaves(bank["hybrid/clean"]),
                  jax.tree.leaves(bank["hybrid/shuffle"])):
    np.testing.assert_array_equal(a.reshape(4, -1).sum(1),
                                  b.reshape(4, -1).sum(1))
  # the hybrid method is Su et al.'s hybrid ticket (controls.hybrid)
  sizes = [int(np.prod(m.shape)) for m in jax.tree.leaves(one)]
  counts = controls.smart_ratio_counts_for(paths, sizes, 0.1, cfg.model.name,
                                           cfg.masks.output_layer)
  want = controls.hybrid(jax.tree.map(lambda a: a[0], inits.scored.params),
                         one, [jnp.int32(c) for c in counts])
  for a, b in zip(jax.tree.leaves(bank["hybrid/clean"]),
                  jax.tree.leaves(want)):
    np.testing.assert_array_equal(a[0], b)
  plan = pai.training_plan(cfg, seeds)
  results = pai.train_chunks(cfg, s, wd, inits, seeds, bank, plan, False)
  assert len(results) == len(plan) == 2 + 2 * 2 * 2 * 3 + 2 * 2
  assert s.trainer.traces["run"] == 1
  # reloads the saved masks instead of scoring again
  again = pai.all_masks(cfg, s, wd, inits, seeds, one, paths, False)
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(bank)):
    np.testing.assert_array_equal(a, b)


def test_imp_reference_from_a_sanity_summary(tmp_path):
  rows = [{"lr": lr, "level": 1, "density": 0.8,
           "ticket": {"mean": 0.5 + lr, "std": 0.0, "per_seed": [0.5]}}
          for lr in (0.1, 0.3)]
  (tmp_path / "summary.json").write_text(json.dumps(
      {"command": "sanity", "rows": rows}))
  ref = pai.read_imp_reference(str(tmp_path), tiny())  # train.lr = 0.3
  assert ref["rows"] == [{"density": 0.8, "test_accuracy": rows[1]["ticket"]}]
  (tmp_path / "summary.json").write_text(json.dumps({"command": "lmc"}))
  with pytest.raises(ConfigError, match="pai.imp_workdir"):
    pai.read_imp_reference(str(tmp_path), tiny())


@pytest.mark.slow
def test_pai_end_to_end_with_imp_reference_and_resume(tmp_path):
  cfg = tiny(**{"pai.methods": ("random", "snip", "synflow"),
                "pai.densities": (0.1,), "pai.imp_workdir": "",
                "imp.levels": 1})
  wd = tmp_path / "run"
  summary = pai.run(cfg, str(wd), progress=False)
  for f in ("config.json", "metrics.jsonl", "summary.json", "report.md",
            "pai_accuracy.png", "pai_collapse.png", "checkpoints/masks",
            "imp/summary.json"):
    assert (wd / f).exists(), f
  assert isinstance(summary, PaiSummary)
  assert [r["method"] for r in summary.rows] == ["random", "snip", "synflow"]
  snip = next(r for r in summary.rows if r["method"] == "snip")
  assert set(snip["settings"]) == {"pai", "shuffle", "reinit",
                                   "random_labels", "shuffled_pixels",
                                   "half_data"}
  assert set(snip["layer_densities"]) == {"Dense_0/kernel", "Dense_1/kernel",
                                          "head/kernel"}
  assert {v["method"] for v in summary.verdicts} == {"random", "snip",
                                                     "synflow"}
  assert summary.imp["rows"] and summary.dense["test"]["mean"] > 0.1
  assert {c["method"] for c in summary.collapse} == {"random", "snip",
                                                     "synflow"}
  text = (wd / "report.md").read_text()
  assert "Su et al.'s checks" in text and summary.conclusion in text
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().split(
      "\n") if l]
  stages = {r.get("stage") for r in rows}
  assert {"pai_chunk_0", "small_dense_0.1"} <= stages
  # a finished run is returned; a resumed one reuses masks and results
  assert pai.run(cfg, str(wd), progress=False) == summary
  mtime = (wd / "stages" / "masks.json").stat().st_mtime
  (wd / "summary.json").unlink()
  again = pai.run(cfg, str(wd), progress=False)
  assert (wd / "stages" / "masks.json").stat().st_mtime == mtime
  assert again.rows == summary.rows
  other = config.set_values(cfg.copy_and_resolve_references(),
                            {"pai.densities": (0.2,)})
  with pytest.raises(Exception, match="different config"):
    pai.run(other, str(wd), progress=False)


@pytest.mark.slow
def test_a_killed_training_chunk_resumes_from_its_checkpoint(tmp_path,
                                                             monkeypatch,
                                                             capsys):
  """Killed after the checkpoint at step 5 of 10, the rerun continues from
  it and ends exactly as the uninterrupted run."""
  from jaxticket.core import checkpoint
  from jaxticket.core.workdir import Workdir
  cfg = tiny(**{"pai.methods": ("random",), "pai.densities": (0.1,),
                "pai.checks": ("shuffle",), "train.steps": 10,
                "train.eval_every": 5, "checkpoint.every_steps": 5})
  seeds = pai.seeds_of(cfg)
  s = common.setup(cfg)
  inits = pai.make_inits(s, seeds)
  one = masks.ones(jax.tree.map(lambda a: a[0], inits.scored.params))
  paths = pai.forward_order(s, one)

  def run(path):
    wd = Workdir(str(path), "pai")
    bank = pai.all_masks(cfg, s, wd, inits, seeds, one, paths, False)
    return pai.train_chunks(cfg, s, wd, inits, seeds, bank,
                            pai.training_plan(cfg, seeds), False)

  whole = run(tmp_path / "a")
  save = checkpoint.TrainCheckpoints.save

  class Killed(Exception):
    pass

  def save_then_die(self, position, tree):
    save(self, position, tree)
    self.close()
    raise Killed

  monkeypatch.setattr(checkpoint.TrainCheckpoints, "save", save_then_die)
  with pytest.raises(Killed):
    run(tmp_path / "b")
  monkeypatch.setattr(checkpoint.TrainCheckpoints, "save", save)
  assert not (tmp_path / "b" / "stages" / "pai_chunk_0.json").exists()
  capsys.readouterr()
  resumed = run(tmp_path / "b")
  assert "stage pai_chunk_0" in (err := capsys.readouterr().err)
  assert "at step 5" in err
  assert resumed == whole
  rows = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl"
                                  ).read_text().split("\n") if l]
  steps = sorted({r["step"] for r in rows if r.get("stage") == "pai_chunk_0"})
  assert steps == [5, 10]
  assert len(rows) == 2 * len(whole)  # no duplicated rows after the resume


def test_su_conclusions_separate_decided_gaps_from_the_seeds_noise():
  """A check the mask wins by more than the margin only in the mean (its CI
  reaches below the margin) is reported as within the noise; one whose CI
  lies above the margin is decided (verdict.status, as the sanity check)."""
  from jaxticket.experiments.pai import report
  from jaxticket.experiments.sanity import verdict
  cfg = tiny(**{"pai.methods": ("random",), "pai.checks": ("shuffle",)})
  crit = verdict.Criteria(tolerance=0.01, margin=0.01)
  rng = np.random.default_rng(0)
  base = rng.normal(0.6, 0.002, 8)
  rows = []
  for d, other in ((0.1, base - 0.03),  # tight, 3 points: decided
                   (0.01, base - 0.015 + np.tile([0.04, -0.04], 4))):  # noisy
    g = verdict.gap(base, other, crit.margin, crit.alpha)
    assert g["gap"] > crit.margin
    rows.append({"method": "random", "density": d, "check": "shuffle", **g,
                 "mask_better": True,
                 "status": verdict.status(g, crit.margin, True)})
  assert [r["status"] for r in rows] == [verdict.HOLDS, verdict.OPEN]
  su = pai.su_conclusions(cfg, rows)
  assert su[0]["beyond_layer_densities"] == [0.01, 0.1]
  assert su[0]["beyond_layer_densities_decided"] == [0.1]
  text = pai.conclusion(su, [], [], crit)
  assert "within the seeds' noise at 1%" in text
  unsure = [{"method": "random", "density": 0.01, "class": "none",
             "outcome": "inconclusive", "possible": ["jackpot", "none"]}]
  text = pai.conclusion(su, [], unsure, crit)
  assert "No PaI mask is a decided jackpot ticket." in text
  assert "random at 1%" in text
  summary = type("S", (), {"su": su})()
  assert "| random | 1%°, 10% |" in report.su_table(summary)
