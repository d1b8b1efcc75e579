"""Sanity checks: what each setting keeps, replica-axis equivalence, and the
whole command on a tiny config."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config
from jaxticket.experiments.imp import imp
from jaxticket.experiments import common
from jaxticket.core import masks
from jaxticket.experiments.sanity import sanity
from jaxticket.core.workdir import Workdir
from jaxticket.core import loop as loop_lib


def tiny(**kw):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.sanity.lrs = (0.1, 0.3)
  return config.set_values(cfg, kw)


@pytest.fixture(scope="module")
def setup_and_ticket():
  cfg = tiny()
  s = common.setup(cfg, lrs=tuple(cfg.sanity.lrs))
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  ones = jax.vmap(masks.ones)(init.params)
  ticket = imp.prune_masks(s, init.params, ones, 0.6, 0.1)
  return cfg, s, init, ticket


def per_layer_counts(mask):
  return [np.asarray(m).reshape(m.shape[0], -1).sum(1)
          for m in jax.tree.leaves(mask)]


def test_controls_keep_what_they_must(setup_and_ticket):
  cfg, s, init, ticket = setup_and_ticket
  density = float(np.mean(jax.vmap(masks.density)(ticket)))
  ctl = sanity.control_masks(s, ticket, jax.random.key(0), density)
  want = per_layer_counts(ticket)
  for name in ("random_prune", "shuffle"):
    for got, w in zip(per_layer_counts(ctl[name]), want):
      np.testing.assert_array_equal(got, w)  # per-layer densities exactly
    diff = [(np.asarray(a) != np.asarray(b)).mean()
            for a, b in zip(jax.tree.leaves(ctl[name]), jax.tree.leaves(ticket))]
    assert max(diff) > 0.1  # and positions really changed
  kept, total = jax.vmap(masks.count)(ctl["smart_ratio"])
  # Su et al.'s counts truncate per layer (their code): a few weights short
  layers = len(jax.tree.leaves(ticket))
  assert np.all(np.abs(kept - round(density * int(total[0]))) <= 2 * layers)


def test_random_reinit_changes_weights_not_mask(setup_and_ticket):
  cfg, s, init, ticket = setup_and_ticket
  rr = sanity.start_state(sanity.reinit_state(s, init), ticket,
                          s.trainer)
  lt = sanity.start_state(init, ticket, s.trainer)
  for p_rr, p_lt, m in zip(jax.tree.leaves(rr.params),
                           jax.tree.leaves(lt.params),
                           jax.tree.leaves(jax.tree.map(
                               lambda m, p: jnp.ones(p.shape, bool)
                               if m is None else m, ticket, init.params,
                               is_leaf=lambda x: x is None))):
    p_rr, p_lt, m = map(np.asarray, (p_rr, p_lt, m))
    np.testing.assert_array_equal(p_rr != 0, p_lt != 0)  # same support
    assert (p_rr[m] != p_lt[m]).mean() > 0.99 or not m.any() or (
        p_lt[m] == 0).all()
  np.testing.assert_array_equal(jax.random.key_data(rr.data_key),
                                jax.random.key_data(lt.data_key))


@pytest.mark.parametrize("density", [0.5, 0.2, 0.1])
def test_small_dense_matches_ticket_count(mnist1d, density):
  cfg = config.default_config()
  total = masks.count(masks.ones(common.setup(cfg).trainer.init(
      loop_lib.replica_keys([0])).params))[1]
  target = int(density * total)
  width, count = sanity.small_dense_width(cfg, mnist1d, target)
  assert width < 1 and abs(count - target) / target < 0.02


def test_settings_on_replica_axis_equal_one_by_one(setup_and_ticket, tmp_path):
  cfg, s, init, ticket = setup_and_ticket
  cfg = cfg.copy_and_resolve_references()
  cfg.train.steps = 10
  cfg.train.eval_every = 10
  s = common.setup(cfg, lrs=tuple(cfg.sanity.lrs))
  wd = Workdir(str(tmp_path), "sanity")
  shuffled = sanity.control_masks(s, ticket, jax.random.key(3), 0.4)["shuffle"]
  group = lambda: [("ticket", ticket, sanity.start_state(init, ticket,
                                                         s.trainer)),
                   ("shuffle", shuffled, sanity.start_state(
                       init, shuffled, s.trainer))]
  together, alone = {}, {}
  sanity.train_group(s, wd, 1, group(), together, progress=False)
  for item in group():
    sanity.train_group(s, wd, 1, [item], alone, progress=False)
  for name in ("ticket", "shuffle"):
    np.testing.assert_allclose(together[name][1].test_loss,
                               alone[name][1].test_loss, rtol=1e-4)


def test_sanity_end_to_end(tmp_path):
  cfg = tiny(**{"imp.levels": 2, "sanity.levels": (2,)})
  summary = sanity.run(cfg, str(tmp_path), progress=False)
  settings = ("ticket", "omp", "random_reinit", "small_dense", "random_prune",
              "shuffle", "smart_ratio", "dense")
  checked = [r for r in summary["rows"] if r["level"] == 2]
  assert sorted(r["lr"] for r in checked) == [0.1, 0.3]
  for r in checked:
    for name in settings:
      assert set(r[name]) == {"mean", "std", "per_seed"}
      assert len(r[name]["per_seed"]) == 2
  (v,) = summary["verdicts"]
  assert v["class"] in ("jackpot", "secondary", "none")
  assert set(v["conditions"]) == {"1", "2", "3", "4", "5"}
  assert v["conditions"]["1"] is False  # 36% sparsity is below 60%
  assert v["class"] == "none" and summary["largest_jackpot_sparsity"] is None
  assert summary["conclusion"]
  # The ticket row equals the IMP level's per-seed result at that LR.
  metrics = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  final = [m for m in metrics if m["level"] == 2 and "settings" not in m
           and m["step"] == cfg.train.steps and m["lr"] == 0.1]
  np.testing.assert_allclose(sorted(m["test_accuracy"] for m in final),
                             sorted(checked[0]["ticket"]["per_seed"]))
  for f in ("report.md", "sanity_accuracy_vs_density.png",
            "sanity_accuracy_vs_lr.png", "summary.json"):
    assert (tmp_path / f).exists()
  diag = summary["diagnostics"]
  assert {(d["lr"], d["level"]) for d in diag} == {(0.1, 0), (0.1, 2),
                                                   (0.3, 0), (0.3, 2)}
  for d in diag:
    assert -1 <= d["mean_correlation"]["mean"] <= 1
    assert 0 <= d["mean_overlap"]["mean"] <= 1
    assert "head/kernel" in d["layers"]
  saved = json.loads((tmp_path / "summary.json").read_text())
  assert saved["verdicts"][0]["class"] == v["class"]
  report_text = (tmp_path / "report.md").read_text()
  assert f"**{v['class']}**" in report_text and summary["conclusion"] in report_text
  # Selective classification of CE nets: ranked by the softmax response,
  # so the own and softmax AURCs agree; full-coverage risk = error rate.
  assert summary.selective_score == "softmax"
  (sel,) = [r for r in summary.selective if r["level"] == 2 and r["lr"] == 0.1]
  for name in settings:
    np.testing.assert_allclose(sel[name]["aurc"]["per_seed"],
                               sel[name]["aurc_softmax"]["per_seed"])
    np.testing.assert_allclose(sel[name]["risk"][0],
                               1 - checked[0][name]["mean"], atol=1e-5)
  assert "Selective classification" in report_text


def test_sanity_rejects_lr_rewinding(tmp_path):
  with pytest.raises(config.ConfigError, match="imp.rewind"):
    sanity.run(tiny(**{"imp.rewind": "lr"}), str(tmp_path), progress=False)


@pytest.mark.slow  # ~12 s: a ResNet ticket
def test_smart_ratios_follow_forward_order(setup_and_ticket):
  cfg, s, init, ticket = setup_and_ticket
  order = [p for p in sanity.forward_order(s) if p.endswith("kernel")]
  assert order == ["Dense_0/kernel", "Dense_1/kernel", "head/kernel"]
  counts = sanity.smart_ratio_layer_counts(s, ticket, 0.1)
  sizes = [int(np.prod(m.shape[1:])) for m in jax.tree.leaves(ticket)]
  ratios = [c / n for c, n in zip(counts, sizes)]
  assert ratios[0] > ratios[1]  # input side denser
  assert ratios[2] == pytest.approx(0.3, abs=1 / sizes[2])  # Su et al.'s 30%
  from jaxticket import models
  m = models.build("resnet20", 10, width=0.25)
  params = m.init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))["params"]
  paths = masks.creation_order(params)
  assert paths[0].startswith("ConvBN_0/") and paths[-1].startswith("head/")
  assert paths.index("BasicBlock_2/ConvBN_0/Conv_0/kernel") < paths.index(
      "BasicBlock_8/ConvBN_0/Conv_0/kernel")


@pytest.mark.slow  # ~20 s: three seed rounds
def test_adaptive_rounds_add_seeds_only_where_inconclusive(tmp_path,
                                                           monkeypatch):
  # Level 1 is made to look inconclusive, by an open condition at LR 0.1,
  # until it has 4 seeds there; level 2 is decided. Round 1 must add 2 seeds
  # at level 1 and LR 0.1 only, with IMP run only as deep as level 1, and
  # then stop.
  real = sanity.judge_levels
  calls = []

  def judge_levels(cfg, rounds, levels, crit):
    out = real(cfg, rounds, levels, crit)
    calls.append(list(levels))
    for level, v in out.items():
      if level == 1 and v["seeds_per_lr"]["0.1"] < 4:
        v["confidence"]["decided"] = False
        v["confidence"]["deciding"] = [{"condition": "4", "lr": 0.1,
                                        "reference_lr": 0.1}]
        v["outcome"] = "inconclusive"
      else:
        v["confidence"]["decided"] = True
    return out

  monkeypatch.setattr(sanity, "judge_levels", judge_levels)
  cfg = tiny(**{"sanity.levels": (1, 2), "sanity.max_seeds": 6,
                "sanity.seeds_per_round": 2})
  summary = sanity.run(cfg, str(tmp_path), progress=False)
  assert calls == [[1, 2], [1]]  # round 1 re-judged level 1 only
  assert summary.rounds == [
      {"seeds": [0, 1], "lrs": [0.1, 0.3], "levels": [1, 2]},
      {"seeds": [2, 3], "lrs": [0.1], "levels": [1]}]
  by_level = {v["level"]: v for v in summary.verdicts}
  assert by_level[1]["seeds_per_lr"] == {"0.1": 4, "0.3": 2}
  assert by_level[2]["seeds_per_lr"] == {"0.1": 2, "0.3": 2}
  assert summary.seeds == [0, 1, 2, 3]
  round_dir = tmp_path / "rounds" / "round_1"
  levels = json.loads((round_dir / "levels.json").read_text())
  assert [r["level"] for r in levels] == [0, 1]  # IMP only to level 1
  assert sorted(p.name for p in (round_dir / "stages").iterdir()) == [
      "level_1_random_reinit+random_prune+shuffle+smart_ratio+omp.json",
      "level_1_small_dense.json"]
  # Level 1's rows hold 4 seeds of the ticket and of every control; the
  # deeper level only the first round's 2.
  row = {(r["level"], r["lr"]): r for r in summary.rows}
  assert len(row[1, 0.1]["random_reinit"]["per_seed"]) == 4
  assert len(row[1, 0.3]["random_reinit"]["per_seed"]) == 2
  assert len(row[2, 0.1]["random_reinit"]["per_seed"]) == 2
  # A finished run returns at once, without new rounds.
  calls.clear()
  again = sanity.run(cfg, str(tmp_path), progress=False)
  assert calls == [] and again.rounds == summary.rounds


@pytest.mark.slow
def test_finished_stages_are_not_retrained(tmp_path, monkeypatch):
  # Run once; drop summary.json (as if killed just before writing it):
  # the rerun trains nothing but reads every stage back, same verdict.
  cfg = tiny(**{"imp.levels": 1, "sanity.levels": (1,)})
  first = sanity.run(cfg, str(tmp_path), progress=False)
  (tmp_path / "summary.json").unlink()
  monkeypatch.setattr(loop_lib.Trainer, "run", lambda *a, **k: pytest.fail(
      "a finished stage was trained again"))
  second = sanity.run(cfg, str(tmp_path), progress=False)
  assert second.verdicts[0]["class"] == first.verdicts[0]["class"]
  assert second.rows == first.rows


def test_next_round_targets_open_levels_lrs_and_budget():
  cfg = tiny(**{"sanity.max_seeds": 7, "sanity.seeds_per_round": 4})
  open_at = lambda *evidence, per_lr: {
      "confidence": {"decided": False, "deciding": list(evidence)},
      "seeds_per_lr": per_lr}
  e = lambda lr, ref, **kw: {"condition": "3", "lr": lr, "reference_lr": ref,
                             **kw}
  verdicts = {
      1: {"confidence": {"decided": True, "deciding": []},
          "seeds_per_lr": {"0.1": 3, "0.3": 3}},
      2: open_at(e(0.3, 0.3, open_random_reinit_lrs=[0.1]),
                 per_lr={"0.1": 3, "0.3": 3}),
      3: open_at(e(0.3, 0.3), per_lr={"0.1": 3, "0.3": 7}),  # budget spent
  }
  levels, lrs, add = sanity.next_round(cfg, verdicts)
  assert levels == [2] and lrs == [0.1, 0.3] and add == 4
  verdicts[2]["seeds_per_lr"] = {"0.1": 7, "0.3": 5}
  assert sanity.next_round(cfg, verdicts) == ([2], [0.1, 0.3], 2)
  verdicts[2]["seeds_per_lr"] = {"0.1": 7, "0.3": 7}
  assert sanity.next_round(cfg, verdicts) is None
