"""The jackpot / secondary-prize verdict of Ma et al. (NeurIPS 2021, Sec. 3).

At one sparsity, a ticket found (and trained) at learning rate x is judged by
five conditions, each evaluated on *test* accuracy means over seeds, with every
"best LR" chosen on the *validation* split:

1. the sparsity is non-trivial (>= ``min_sparsity``);
2. the small-dense network (best LR) is clearly worse than the ticket;
3. the ticket is clearly better than its random re-initialization trained at
   *any* LR (we compare with RR at every LR of the grid);
4. the ticket is similar to or better than the dense net at the *same* LR;
5. the ticket is similar to or better than the *well-trained* dense net
   (dense at its best LR).

"Clearly better" = gap > ``margin``; "similar or better" = gap >= -``tolerance``.
Jackpot: some LR x meets 1-5; secondary prize: some x meets 1-4, none 1-5.
Beyond the paper, every gap carries a Welch confidence interval over seeds and
a one-sided test; with ``require_significance`` a condition holds only if its
test rejects (for 2/3: gap > margin; for 4/5: gap > -tolerance).

How sure a verdict is (:func:`confidence`, ours): a condition is *decided*
when its gap's confidence interval lies wholly on one side of its threshold
and *open* when the interval straddles it; conditions combine by three-valued
logic (a conjunction with a failed member fails, one with an open member and
none failed is open), so the class is *decided* only if no open condition
could change it, and otherwise the outcome is *inconclusive* between the
classes it could still be. Independently, the seeds are resampled with
replacement (paired across settings, a bootstrap of the whole verdict, best
LRs re-chosen on validation each time) and the share of resamples that give
the same class says how robust it is to the particular seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping

import numpy as np
from scipy import stats as scipy_stats

from jaxticket.core import stats as stats_lib

#: Ma et al.'s thresholds (fractions) per dataset: (tolerance, margin). Ours
#: for the small offline sets are wider: their test sets have 1000 (mnist1d)
#: and 359 (digits) examples, so one example is 0.1% / 0.28% and the
#: binomial std of an accuracy near 70% is ~1.4% / ~2.4%.
DEFAULT_THRESHOLDS = {
    "cifar10": (0.005, 0.005), "cifar100": (0.01, 0.005),
    "mnist": (0.005, 0.005), "fashion_mnist": (0.005, 0.005),
    "mnist1d": (0.01, 0.01), "digits": (0.015, 0.015),
}

CLASSES = ("jackpot", "secondary", "none")

#: Three-valued status of a condition: holds, fails, open (CI straddles).
HOLDS, FAILS, OPEN = "holds", "fails", "open"


@dataclasses.dataclass(frozen=True)
class Criteria:
  tolerance: float
  margin: float
  min_sparsity: float = 0.6
  test: str = "welch"  # welch | none
  alpha: float = 0.05
  require_significance: bool = False


def gap(a: np.ndarray, b: np.ndarray, threshold: float, alpha: float,
        test: str = "welch") -> dict:
  """mean(a) - mean(b) with a Welch CI, and a one-sided test of
  H0: gap <= threshold against H1: gap > threshold."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  diff = float(a.mean() - b.mean())
  out = {"gap": diff, "ci_low": None, "ci_high": None, "p_value": None,
         "significant": None}
  if test == "none" or len(a) < 2 or len(b) < 2:
    return out
  se, dof = stats_lib.welch_se_dof(a, b)
  if se == 0:
    out.update(ci_low=diff, ci_high=diff, p_value=0.0 if diff > threshold
               else 1.0, significant=diff > threshold)
    return out
  half = float(scipy_stats.t.ppf(1 - alpha / 2, dof)) * se
  p = float(scipy_stats.t.sf((diff - threshold) / se, dof))
  out.update(ci_low=diff - half, ci_high=diff + half, p_value=p,
             significant=p < alpha)
  return out


def status(one: dict, threshold: float, strict: bool) -> str:
  """:data:`HOLDS` / :data:`FAILS` when the gap's confidence interval lies
  wholly on the passing / failing side of ``threshold`` (``strict``: the
  gap must exceed it; else reach it), :data:`OPEN` when it straddles it.
  Without an interval (test 'none', one seed) the point gap decides."""
  low, high = one.get("ci_low"), one.get("ci_high")
  if low is None:
    low = high = one["gap"]
  passes = (lambda x: x > threshold) if strict else (lambda x: x >= threshold)
  if passes(low):
    return HOLDS
  return FAILS if not passes(high) else OPEN


def all_of(statuses) -> str:
  """Three-valued AND: fails if any fails, else open if any is open."""
  statuses = list(statuses)
  return (FAILS if FAILS in statuses else OPEN if OPEN in statuses
          else HOLDS)


def any_of(statuses) -> str:
  """Three-valued OR: holds if any holds, else open if any is open."""
  statuses = list(statuses)
  return (HOLDS if HOLDS in statuses else OPEN if OPEN in statuses
          else FAILS)


def best_lr(table: Mapping[float, Mapping[str, np.ndarray]]) -> float:
  """The LR whose mean *validation* accuracy is highest."""
  return max(table, key=lambda lr: float(np.mean(table[lr]["val"])))


def judge(tables: Mapping[str, Mapping[float, Mapping[str, np.ndarray]]],
          sparsity: float, criteria: Criteria) -> dict:
  """Verdict at one sparsity.

  Args:
    tables: ``tables[setting][lr] = {"val": per-seed, "test": per-seed}`` for
      settings ``ticket``, ``random_reinit``, ``small_dense``, ``dense``
      (others are ignored here).
    sparsity: fraction of prunable weights removed.
    criteria: thresholds and testing options.
  Returns:
    ``{"class", "lr", "conditions": {"1".."5": bool}, "gaps": {...},
    "per_lr": [...]}`` for the LR that earned the best class (ties: the
    ticket's best validation accuracy).
  """
  c = criteria
  tk, rr, sd, dn = (tables[k] for k in ("ticket", "random_reinit",
                                        "small_dense", "dense"))
  sd_best, dn_best = best_lr(sd), best_lr(dn)
  per_lr = []
  for lr in tk:
    t = tk[lr]["test"]
    # Condition 3 (Ma et al. 2021, Sec. 3): the ticket must clearly beat its
    # random re-initialization trained at ANY LR, so it is judged against
    # every LR of the grid; the closest one decides and is reported.
    vs_rr = {float(r): gap(t, rr[r]["test"], c.margin, c.alpha, c.test)
             for r in rr}
    rr_decisive = min(vs_rr, key=lambda r: vs_rr[r]["gap"])
    g = {
        "vs_small_dense": gap(t, sd[sd_best]["test"], c.margin, c.alpha, c.test),
        "vs_random_reinit": vs_rr[rr_decisive],
        "vs_dense_same_lr": gap(t, dn[lr]["test"], -c.tolerance, c.alpha,
                                c.test),
        "vs_dense_best": gap(t, dn[dn_best]["test"], -c.tolerance, c.alpha,
                             c.test),
    }

    def passes(one: dict, threshold: float, strict: bool) -> bool:
      ok = one["gap"] > threshold if strict else one["gap"] >= threshold
      if c.require_significance:
        ok = ok and bool(one["significant"])
      return bool(ok)

    holds = lambda name, threshold, strict: passes(g[name], threshold, strict)
    cond = {"1": bool(sparsity >= c.min_sparsity),
            "2": holds("vs_small_dense", c.margin, True),
            "3": all(passes(v, c.margin, True) for v in vs_rr.values()),
            "4": holds("vs_dense_same_lr", -c.tolerance, False),
            "5": holds("vs_dense_best", -c.tolerance, False)}
    klass = ("jackpot" if all(cond.values()) else
             "secondary" if all(cond[i] for i in "1234") else "none")
    st = {"1": HOLDS if cond["1"] else FAILS,
          "2": status(g["vs_small_dense"], c.margin, True),
          "3": all_of(status(v, c.margin, True) for v in vs_rr.values()),
          "4": status(g["vs_dense_same_lr"], -c.tolerance, False),
          "5": status(g["vs_dense_best"], -c.tolerance, False)}
    per_lr.append({"lr": float(lr), "class": klass, "conditions": cond,
                   "status": st,
                   "gaps": g, "ticket_val": float(np.mean(tk[lr]["val"])),
                   "random_reinit_lr": rr_decisive,
                   "reference_lrs": {"small_dense": float(sd_best),
                                     "dense": float(dn_best)},
                   "vs_random_reinit_per_lr": {f"{r:g}": v
                                               for r, v in vs_rr.items()}})
  best = min(per_lr, key=lambda r: (CLASSES.index(r["class"]), -r["ticket_val"]))
  return {"class": best["class"], "lr": best["lr"],
          "conditions": best["conditions"], "gaps": best["gaps"],
          "reference_lrs": {"random_reinit": best["random_reinit_lr"],
                            "small_dense": float(sd_best),
                            "dense": float(dn_best)},
          "per_lr": per_lr}


#: The gap and threshold behind each condition (1 compares the sparsity).
_CONDITION_GAPS = {"2": ("vs_small_dense", "margin", True),
                   "3": ("vs_random_reinit", "margin", True),
                   "4": ("vs_dense_same_lr", "tolerance", False),
                   "5": ("vs_dense_best", "tolerance", False)}


def _evidence(p: dict, cond: str, c: Criteria) -> dict:
  """What condition ``cond`` rests on at one LR row ``p`` of :func:`judge`:
  its gap, CI and threshold, and ``reference_lr``, the LR of the setting it
  compares with (for 3, the RR LR that matters most: a failing or open one
  if any, else the closest; ``open_random_reinit_lrs`` lists every open
  one)."""
  if cond == "1":
    return {"lr": p["lr"], "condition": "1", "status": p["status"]["1"]}
  name, kind, strict = _CONDITION_GAPS[cond]
  threshold = c.margin if kind == "margin" else -c.tolerance
  one = p["gaps"][name]
  reference = {"2": p["reference_lrs"]["small_dense"], "4": p["lr"],
               "5": p["reference_lrs"]["dense"]}.get(cond)
  out = {}
  if cond == "3":
    rank = {FAILS: 0, OPEN: 1, HOLDS: 2}
    per_rr = p["vs_random_reinit_per_lr"]
    reference, one = min(per_rr.items(), key=lambda kv: (
        rank[status(kv[1], threshold, True)], kv[1]["gap"]))
    out["open_random_reinit_lrs"] = [
        float(r) for r, v in per_rr.items()
        if status(v, threshold, True) == OPEN]
  return {"lr": p["lr"], "condition": cond, "status": p["status"][cond],
          "gap": one["gap"], "ci_low": one.get("ci_low"),
          "ci_high": one.get("ci_high"), "threshold": threshold,
          "reference_lr": float(reference), **out}


def lrs_to_sample(conf: dict) -> list[float]:
  """The LRs whose settings an inconclusive verdict's open conditions
  compare (the ticket's and each reference's): more seeds there, and only
  there, can decide it."""
  lrs = set()
  for e in conf["deciding"]:
    if e["condition"] != "1":
      lrs |= {e["lr"], e["reference_lr"], *e.get("open_random_reinit_lrs",
                                                  ())}
  return sorted(lrs)


def _slack(e: dict) -> float:
  """How far a condition's interval clears its threshold (points; the
  weakest link of a decided class has the least)."""
  low = e["gap"] if e.get("ci_low") is None else e["ci_low"]
  high = e["gap"] if e.get("ci_high") is None else e["ci_high"]
  return min(abs(low - e["threshold"]), abs(high - e["threshold"]))


def _comparisons(p: dict, c: Criteria) -> dict:
  """Condition -> the comparisons it rests on at one LR row, each as
  ``(key, status)``; the key names the compared settings and threshold, so
  a comparison two conditions share (4 and 5 when the best dense LR is the
  ticket's own) is one unknown, not two."""
  lr, refs = p["lr"], p["reference_lrs"]
  rr = [(("random_reinit", lr, float(r)), status(v, c.margin, True))
        for r, v in p["vs_random_reinit_per_lr"].items()]
  return {"2": [(("small_dense", lr, refs["small_dense"]), p["status"]["2"])],
          "3": rr,
          "4": [(("dense", lr, lr), p["status"]["4"])],
          "5": [(("dense", lr, refs["dense"]), p["status"]["5"])]}


def possible_classes(per_lr: list[dict], criteria: Criteria,
                     limit: int = 16) -> list[str]:
  """Every class the verdict could take if each open comparison went
  either way (exhaustively over up to ``limit`` open comparisons; beyond
  that, by three-valued logic over the conditions, which may list a class
  that no assignment gives)."""
  comps = [_comparisons(p, criteria) for p in per_lr]
  unknown = sorted({k for cs in comps for items in cs.values()
                    for k, st in items if st == OPEN})
  if len(unknown) > limit:
    jack = any_of(all_of(p["status"][i] for i in "12345") for p in per_lr)
    sec = any_of(all_of(p["status"][i] for i in "1234") for p in per_lr)
    return [k for k, ok in (("jackpot", jack != FAILS),
                            ("secondary", sec != FAILS and jack != HOLDS),
                            ("none", sec != HOLDS)) if ok]
  found = set()
  for bits in itertools.product((True, False), repeat=len(unknown)):
    value = dict(zip(unknown, bits))
    truth = lambda k, st: value[k] if st == OPEN else st == HOLDS
    best = len(CLASSES) - 1
    for p, cs in zip(per_lr, comps):
      cond = {"1": p["status"]["1"] == HOLDS,
              **{i: all(truth(k, st) for k, st in cs[i]) for i in "2345"}}
      klass = (0 if all(cond.values()) else
               1 if all(cond[i] for i in "1234") else 2)
      best = min(best, klass)
    found.add(CLASSES[best])
  return [k for k in CLASSES if k in found]


def decide(per_lr: list[dict], criteria: Criteria) -> dict:
  """Whether the class is decided by the conditions' intervals.

  Returns ``{"decided", "possible": [classes it could still be],
  "deciding": [evidence]}``: for a decided jackpot the tightest of its
  conditions at the LR that wins it; for a decided secondary prize the
  failing condition 5; for a decided "none" the most clearly failing
  condition at each LR; for an open verdict every open condition that
  could change it.
  """
  c = criteria
  jack_lr = [all_of(p["status"][i] for i in "12345") for p in per_lr]
  sec_lr = [all_of(p["status"][i] for i in "1234") for p in per_lr]
  possible = possible_classes(per_lr, c)
  best = lambda rows: max(rows, key=lambda p: p["ticket_val"])
  if possible == ["jackpot"]:
    p = best([p for p, j in zip(per_lr, jack_lr) if j == HOLDS])
    deciding = [min((_evidence(p, i, c) for i in "2345"), key=_slack)]
  elif possible == ["secondary"]:
    p = best([p for p, s2 in zip(per_lr, sec_lr) if s2 == HOLDS])
    deciding = [_evidence(p, "5", c)]
  elif possible == ["none"]:
    deciding = []
    for p in per_lr:
      failing = [_evidence(p, i, c) for i in "1234"
                 if p["status"][i] == FAILS]
      deciding.append(max(failing, key=lambda e: _slack(e)
                          if e["condition"] != "1" else np.inf))
  else:
    deciding = []
    for p, j, s2 in zip(per_lr, jack_lr, sec_lr):
      conds = "12345" if j == OPEN else "1234" if s2 == OPEN else ""
      deciding += [_evidence(p, i, c) for i in conds
                   if p["status"][i] == OPEN]
  return {"decided": len(possible) == 1, "possible": possible,
          "deciding": deciding}


def robustness(tables: Mapping[str, Mapping[float, Mapping[str, np.ndarray]]],
               sparsity: float, criteria: Criteria, resamples: int,
               seed: int = 0) -> dict:
  """Bootstrap of the verdict over seeds: resample the seeds with
  replacement (the same draws for every setting and LR, since a seed is one
  shared data order and initialization; each array apart if their seed
  counts differ), re-judge, and count the classes. Returns ``{"resamples",
  "shares": {class: fraction}}``."""
  rng = np.random.default_rng(seed)
  arrays = [a for t in tables.values() for v in t.values() for a in v.values()]
  sizes = {len(a) for a in arrays}
  fast = criteria if criteria.require_significance else dataclasses.replace(
      criteria, test="none")
  counts = dict.fromkeys(CLASSES, 0)
  for _ in range(resamples):
    shared = rng.integers(0, min(sizes), min(sizes)) if len(sizes) == 1 \
        else None
    pick = lambda a: a[shared if shared is not None else
                       rng.integers(0, len(a), len(a))]
    redrawn = {k: {lr: {split: pick(a) for split, a in v.items()}
                   for lr, v in t.items()} for k, t in tables.items()}
    counts[judge(redrawn, sparsity, fast)["class"]] += 1
  return {"resamples": resamples,
          "shares": {k: n / max(resamples, 1) for k, n in counts.items()}}


def confidence(tables, sparsity: float, criteria: Criteria, verdict: dict,
               resamples: int = 1000, seed: int = 0) -> dict:
  """How sure ``verdict`` (from :func:`judge` on ``tables``) is: the
  interval logic of :func:`decide`, the seed bootstrap of
  :func:`robustness`, and the outcome: the class when decided, else
  ``"inconclusive"``. Without intervals (``test='none'`` or one seed)
  ``decided`` is None and only the bootstrap speaks."""
  no_ci = criteria.test == "none" or any(
      len(a) < 2 for t in tables.values() for v in t.values()
      for a in v.values())
  out = decide(verdict["per_lr"], criteria)
  if no_ci:
    out["decided"] = None
  boot = robustness(tables, sparsity, criteria, resamples, seed) \
      if resamples > 0 else {"resamples": 0, "shares": {}}
  out["agreement"] = boot["shares"].get(verdict["class"])
  out["bootstrap"] = boot
  out["outcome"] = (verdict["class"] if out["decided"] in (True, None)
                    else "inconclusive")
  return out


def describe(v: dict) -> str:
  """The confidence of one verdict in plain words (console and report)."""
  conf = v.get("confidence")
  if not conf:
    return v["class"]
  agree = conf.get("agreement")
  share = (f"; {100 * agree:.0f}% of {conf['bootstrap']['resamples']} seed "
           "resamples agree" if agree is not None else "")
  def one(e):
    if e["condition"] == "1":
      return "condition 1 (sparsity)"
    ci = ("" if e.get("ci_low") is None else
          f", 95% CI [{100 * e['ci_low']:+.2f}, {100 * e['ci_high']:+.2f}]")
    return (f"condition {e['condition']} at LR {e['lr']:g}: gap "
            f"{100 * e['gap']:+.2f} pts{ci} vs threshold "
            f"{100 * e['threshold']:+.2f}")
  if conf["decided"] is None:
    return f"{v['class']} (no confidence intervals{share})"
  if conf["decided"]:
    return (f"{v['class']}, decided{share}; tightest: "
            f"{one(conf['deciding'][0])}" if conf["deciding"] else
            f"{v['class']}, decided{share}")
  opened = "; ".join(one(e) for e in conf["deciding"][:3])
  return (f"inconclusive ({' or '.join(conf['possible'])}; point estimate "
          f"{v['class']}{share}); open: {opened}")


def conclusion(verdicts: list[dict], criteria: Criteria) -> str:
  """A few plain sentences summarizing the verdicts over sparsities. Claims
  rest on decided verdicts only; inconclusive point estimates are named as
  such (verdicts without a confidence, from earlier versions, count as
  decided)."""
  decided = lambda v: v.get("outcome", v["class"]) == v["class"]
  at = lambda klass, sure: [v for v in verdicts if v["class"] == klass
                            and decided(v) == sure]
  jack, sec = at("jackpot", True), at("secondary", True)
  maybe_jack, maybe_sec = at("jackpot", False), at("secondary", False)
  pcts = lambda vs: ", ".join(f"{100 * v['sparsity']:.1f}%" for v in vs)
  parts = []
  if jack:
    lrs = sorted({v["lr"] for v in jack})
    parts.append(f"Jackpot winning tickets exist up to "
                 f"{100 * max(v['sparsity'] for v in jack):.1f}% "
                 f"sparsity (found at LR {', '.join(f'{x:g}' for x in lrs)}): "
                 "they match the well-trained dense net and clearly beat "
                 "their random re-initialization and the small-dense net.")
  elif maybe_jack:
    parts.append(f"No jackpot ticket is established: at {pcts(maybe_jack)} "
                 "sparsity the means look like a jackpot, but the seeds "
                 "leave it undecided.")
  else:
    parts.append("No jackpot ticket: at no checked sparsity >= "
                 f"{100 * criteria.min_sparsity:.0f}% does a ticket match the "
                 "well-trained dense net while clearly beating both controls.")
  if sec:
    parts.append(f"Secondary prizes (matching the dense net at the same LR "
                 f"only) reach {100 * max(v['sparsity'] for v in sec):.1f}% "
                 "sparsity.")
  elif maybe_sec:
    parts.append(f"At {pcts(maybe_sec)} the means look like a secondary "
                 "prize, undecided.")
  fails = {i: sum(not v["conditions"][i] for v in verdicts) for i in "2345"}
  names = {"2": "beat the small-dense net",
           "3": "beat random re-initialization",
           "4": "match dense at the same LR",
           "5": "match the well-trained dense net"}
  worst = max(fails, key=fails.get)
  if fails[worst]:
    parts.append(f"The most common failure of the means was to "
                 f"{names[worst]} ({fails[worst]} of {len(verdicts)} "
                 "sparsities).")
  unsure = [v for v in verdicts if v.get("outcome") == "inconclusive"]
  if unsure:
    parts.append(
        "Not decided by the seeds run: "
        + "; ".join(f"{100 * v['sparsity']:.1f}% (point estimate "
                    f"{v['class']}, could be "
                    f"{' or '.join(v['confidence']['possible'])})"
                    for v in unsure)
        + ": a confidence interval there still straddles its threshold "
        "after the adaptive rounds; more seeds (sanity.max_seeds) or a "
        "less noisy benchmark are needed before claiming either.")
  elif verdicts and all(v.get("outcome") for v in verdicts):
    parts.append("Every checked sparsity is decided: no condition's "
                 "confidence interval straddles its threshold.")
  parts.append(f"'Similar' means within {100 * criteria.tolerance:.1f} points, "
               f"'clearly' more than {100 * criteria.margin:.1f} points"
               + (", and each must be significant." if
                  criteria.require_significance else "."))
  return " ".join(parts)
