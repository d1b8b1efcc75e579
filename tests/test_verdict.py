"""The verdict on constructed accuracy tables: each class and each failing
condition (Ma et al. 2021, Sec. 3)."""

import numpy as np
import pytest

from jaxticket.experiments.sanity import verdict

LRS = (0.01, 0.1)
CRIT = verdict.Criteria(tolerance=0.005, margin=0.005, min_sparsity=0.6)


def col(val, test=None, spread=0.001):
  test = val if test is None else test
  j = np.array([-spread, 0.0, spread])
  return {"val": val + j, "test": test + j}


def tables(ticket=(0.90, 0.91), rr=(0.80, 0.85), sd=(0.80, 0.84),
           dense=(0.905, 0.912)):
  mk = lambda vals: {lr: col(v) for lr, v in zip(LRS, vals)}
  return {"ticket": mk(ticket), "random_reinit": mk(rr),
          "small_dense": mk(sd), "dense": mk(dense)}


def test_jackpot():
  v = verdict.judge(tables(), 0.8, CRIT)
  assert v["class"] == "jackpot" and all(v["conditions"].values())
  assert v["lr"] == 0.1
  assert v["reference_lrs"]["dense"] == 0.1


def test_secondary_prize_only_matches_dense_at_same_small_lr():
  # At lr 0.01 the ticket matches the (under-trained) dense net at 0.01, but
  # the well-trained dense (0.1) is far better; at 0.1 the ticket is poor.
  t = tables(ticket=(0.86, 0.84), dense=(0.862, 0.92), rr=(0.80, 0.82),
             sd=(0.79, 0.80))
  v = verdict.judge(t, 0.8, CRIT)
  assert v["class"] == "secondary" and v["lr"] == 0.01
  assert v["conditions"] == {"1": True, "2": True, "3": True, "4": True,
                             "5": False}


@pytest.mark.parametrize("failing,kw,sparsity", [
    (1, {}, 0.5),
    (2, {"sd": (0.80, 0.908)}, 0.8),
    (3, {"rr": (0.80, 0.908)}, 0.8),
])
def test_each_failing_condition_gives_none(failing, kw, sparsity):
  v = verdict.judge(tables(**kw), sparsity, CRIT)
  assert v["class"] == "none"
  for p in v["per_lr"]:
    assert not p["conditions"][str(failing)]


def test_condition_4_fails_when_dense_at_same_lr_is_better():
  # Ticket at lr 0.1 is far below dense at 0.1 but matches dense best? No:
  # dense best is also 0.1, so conditions 4 and 5 fail together; make the
  # best dense (by val) a different LR with lower test accuracy.
  t = tables(ticket=(0.80, 0.90), dense=(0.95, 0.93), rr=(0.7, 0.7),
             sd=(0.7, 0.7))
  t["dense"][0.01] = {"val": np.array([0.96, 0.96, 0.96]),
                      "test": np.array([0.895, 0.895, 0.895])}
  v = verdict.judge(t, 0.8, CRIT)
  row = [p for p in v["per_lr"] if p["lr"] == 0.1][0]
  assert row["conditions"]["5"] and not row["conditions"]["4"]
  assert v["class"] == "none"


def test_condition_5_uses_validation_to_pick_best_dense():
  t = tables()
  # Dense at 0.01 has the best *test* accuracy but worse validation.
  t["dense"][0.01] = {"val": np.array([0.5, 0.5, 0.5]),
                      "test": np.array([0.99, 0.99, 0.99])}
  v = verdict.judge(t, 0.8, CRIT)
  assert v["reference_lrs"]["dense"] == 0.1 and v["class"] == "jackpot"


def test_significance_requirement():
  noisy = tables()
  for lr in LRS:  # huge seed spread: gaps are not significant
    noisy["ticket"][lr]["test"] = noisy["ticket"][lr]["test"] + np.array(
        [-0.1, 0.0, 0.1])
  loose = verdict.judge(noisy, 0.8, CRIT)
  strict = verdict.judge(noisy, 0.8, verdict.Criteria(
      0.005, 0.005, 0.6, require_significance=True))
  assert loose["class"] == "jackpot" and strict["class"] == "none"


def test_gap_ci_matches_welch_formula():
  a, b = np.array([0.9, 0.91, 0.92, 0.93]), np.array([0.8, 0.85, 0.83])
  g = verdict.gap(a, b, 0.0, 0.05)
  from scipy import stats
  res = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
  assert g["p_value"] == pytest.approx(res.pvalue, rel=1e-6)
  assert g["ci_low"] < g["gap"] < g["ci_high"]
  assert g["gap"] == pytest.approx(a.mean() - b.mean())
  two_sided = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert g["ci_low"] == pytest.approx(two_sided.low, rel=1e-6)
  assert g["ci_high"] == pytest.approx(two_sided.high, rel=1e-6)


def test_conclusion_mentions_largest_sparsities():
  vs = [{"sparsity": 0.7, "class": "jackpot", "lr": 0.1,
         "conditions": {i: True for i in "12345"}},
        {"sparsity": 0.9, "class": "secondary", "lr": 0.01,
         "conditions": {"1": True, "2": True, "3": True, "4": True,
                        "5": False}}]
  text = verdict.conclusion(vs, CRIT)
  assert "70.0%" in text and "90.0%" in text


def test_condition_3_judges_rr_at_every_lr():
  """Ma et al.: the ticket must clearly beat RR "trained at any LR". RR's
  best-validation LR (0.1) is clearly beaten, but RR at 0.01, worse on
  validation, is as good as the ticket on test: no jackpot, and the
  decisive RR LR is reported. The old rule (RR at its best-val LR only)
  would have called this a jackpot."""
  t = tables()
  t["random_reinit"] = {0.01: col(0.70, test=0.908), 0.1: col(0.85)}
  v = verdict.judge(t, 0.8, CRIT)
  assert v["class"] == "none" and not v["conditions"]["3"]
  assert v["reference_lrs"]["random_reinit"] == 0.01
  best = [r for r in v["per_lr"] if r["lr"] == v["lr"]][0]
  assert set(best["vs_random_reinit_per_lr"]) == {"0.01", "0.1"}
  # With RR at 0.01 clearly worse too, the jackpot is back.
  t["random_reinit"][0.01] = col(0.70, test=0.86)
  assert verdict.judge(t, 0.8, CRIT)["class"] == "jackpot"


def seeded(mean, spread, n, rng):
  x = mean + spread * rng.standard_normal(n)
  return {"val": x.copy(), "test": x}


def synthetic(rr_mean, spread, n=5, seed=0):
  """Ticket 0.90 everywhere; dense a bit above; small-dense far below; the
  random re-init at ``rr_mean`` with per-seed noise ``spread``."""
  rng = np.random.default_rng(seed)
  mk = lambda m, s: {lr: seeded(m, s, n, rng) for lr in LRS}
  return {"ticket": mk(0.90, spread), "random_reinit": mk(rr_mean, spread),
          "small_dense": mk(0.80, spread), "dense": mk(0.901, spread)}


def test_clear_gap_is_decided():
  t = synthetic(rr_mean=0.85, spread=0.001)
  v = verdict.judge(t, 0.8, CRIT)
  conf = verdict.confidence(t, 0.8, CRIT, v, resamples=200)
  assert v["class"] == "jackpot"
  assert conf["decided"] is True and conf["outcome"] == "jackpot"
  assert conf["possible"] == ["jackpot"]
  assert conf["agreement"] == 1.0
  # The tightest condition is named, with an interval clear of its threshold.
  (e,) = conf["deciding"]
  assert e["status"] == verdict.HOLDS
  assert e["ci_low"] > e["threshold"] or e["condition"] in "45" and \
      e["ci_low"] >= e["threshold"]


def test_coin_toss_gap_is_inconclusive():
  # Ticket beats RR by ~0.5 pts = the margin, with seed noise of 1 pt: the
  # interval of condition 3 straddles the margin at every LR.
  t = synthetic(rr_mean=0.895, spread=0.01, n=3, seed=1)
  v = verdict.judge(t, 0.8, CRIT)
  conf = verdict.confidence(t, 0.8, CRIT, v, resamples=300)
  assert conf["decided"] is False and conf["outcome"] == "inconclusive"
  assert len(conf["possible"]) >= 2
  assert any(e["condition"] == "3" and e["status"] == verdict.OPEN
             for e in conf["deciding"])
  for e in conf["deciding"]:
    assert e["ci_low"] <= e["threshold"] <= e["ci_high"]
  assert 0.0 < conf["agreement"] < 1.0
  text = verdict.describe({**v, "confidence": conf})
  assert text.startswith("inconclusive") and "condition 3" in text


def test_decided_none_names_the_failing_condition():
  t = synthetic(rr_mean=0.85, spread=0.001)
  for lr in LRS:  # the small-dense net is as good as the ticket
    t["small_dense"][lr] = {k: a + 0.1 for k, a in t["small_dense"][lr].items()}
  v = verdict.judge(t, 0.8, CRIT)
  conf = verdict.confidence(t, 0.8, CRIT, v, resamples=50)
  assert v["class"] == "none" and conf["decided"] is True
  assert {e["condition"] for e in conf["deciding"]} == {"2"}
  assert all(e["status"] == verdict.FAILS for e in conf["deciding"])


def test_three_valued_logic():
  H, F, O = verdict.HOLDS, verdict.FAILS, verdict.OPEN
  assert verdict.all_of([H, O]) == O and verdict.all_of([O, F]) == F
  assert verdict.any_of([F, O]) == O and verdict.any_of([O, H]) == H
  gap = lambda g, lo, hi: {"gap": g, "ci_low": lo, "ci_high": hi}
  assert verdict.status(gap(0.02, 0.011, 0.03), 0.01, True) == H
  assert verdict.status(gap(0.005, -0.01, 0.01), 0.01, True) == F  # not > 0.01
  assert verdict.status(gap(0.01, 0.0, 0.02), 0.01, True) == O
  assert verdict.status(gap(-0.01, -0.01, 0.0), -0.01, False) == H  # >= -0.01


def test_bootstrap_resamples_seeds_jointly():
  # One seed is bad for the ticket only: resamples that draw it often flip
  # the class, the others do not; the shares sum to one and are seeded.
  t = synthetic(rr_mean=0.85, spread=0.0005, n=4)
  for lr in LRS:
    for split in ("val", "test"):
      t["ticket"][lr][split][0] -= 0.2
  a = verdict.robustness(t, 0.8, CRIT, resamples=400, seed=3)
  b = verdict.robustness(t, 0.8, CRIT, resamples=400, seed=3)
  assert a == b
  shares = a["shares"]
  assert abs(sum(shares.values()) - 1) < 1e-9
  # P(seed 0 never drawn in 4 draws) = (3/4)^4 = 0.32: then jackpot.
  assert 0.2 < shares["jackpot"] < 0.45


def test_possible_classes_treat_one_comparison_as_one_unknown():
  # At LR 0.1 the ticket matches the dense net (which is also the best
  # dense LR) within an open interval; everything else clearly holds. Then
  # conditions 4 and 5 are the SAME comparison: it is a jackpot or, if the
  # comparison fails, none; never a secondary prize (4 without 5).
  rng = np.random.default_rng(0)
  t = {"ticket": {lr: seeded(0.90, 0.002, 5, rng) for lr in LRS},
       "random_reinit": {lr: seeded(0.80, 0.002, 5, rng) for lr in LRS},
       "small_dense": {lr: seeded(0.80, 0.002, 5, rng) for lr in LRS},
       "dense": {0.01: seeded(0.80, 0.002, 5, rng),
                 0.1: seeded(0.905, 0.004, 5, rng)}}
  t["ticket"][0.01] = seeded(0.70, 0.002, 5, rng)  # poor at the small LR
  crit = verdict.Criteria(tolerance=0.005, margin=0.005)
  v = verdict.judge(t, 0.8, crit)
  row = [p for p in v["per_lr"] if p["lr"] == 0.1][0]
  assert row["status"]["4"] == row["status"]["5"] == verdict.OPEN
  assert row["status"]["2"] == row["status"]["3"] == verdict.HOLDS
  assert verdict.possible_classes(v["per_lr"], crit) == ["jackpot", "none"]
  # The three-valued shortcut over conditions would also allow 'secondary'.
  assert verdict.possible_classes(v["per_lr"], crit, limit=0) == [
      "jackpot", "secondary", "none"]
