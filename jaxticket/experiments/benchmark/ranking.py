"""Rank statistics for the benchmark lottery (Dehghani et al. 2021), in NumPy.

Dehghani et al. ("The Benchmark Lottery", 2021, Sec. 3) show that which
method "wins" depends on the tasks chosen and on how per-task results are
aggregated. These pure functions compute what their analysis needs on a
results table ``scores[method, dataset]`` (higher = better): ranks with
ties, bootstrap CIs of ranks over seeds, several aggregations, Kendall's
tau-b between rankings, and leave-one-dataset-out flips. No jax, no scipy
(tests compare :func:`kendall_tau_b` with ``scipy.stats.kendalltau``).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

#: Aggregations of a results table, each a per-method value and whether a
#: higher value is better.
AGGREGATIONS = {"mean_accuracy": True, "mean_rank": False,
                "median_accuracy": True, "wins": True}


def ranks(values: np.ndarray, higher_better: bool = True) -> np.ndarray:
  """Rank 1 = best; tied values share the average of their ranks (the
  'fractional' ranking scipy.stats.rankdata calls 'average'). Values equal
  to 9 decimals tie: float32 accuracies averaged in another order must not
  split a tie."""
  v = np.round(np.asarray(values, np.float64), 9)
  v = v if higher_better else -v
  better = (v[None, :] > v[:, None]).sum(1)
  tied = (v[None, :] == v[:, None]).sum(1)
  return 1.0 + better + (tied - 1) / 2.0


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
  """Kendall's tau-b of two rankings (or scores) of the same items:
  (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)) over the
  n0 = n(n-1)/2 pairs (Kendall 1945); NaN when either is all ties."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  i, j = np.triu_indices(len(x), 1)
  dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
  n0 = len(i)
  tx, ty = int((dx == 0).sum()), int((dy == 0).sum())
  denom = np.sqrt(float(n0 - tx) * float(n0 - ty))
  return float((dx * dy).sum() / denom) if denom > 0 else float("nan")


def bootstrap_ranks(per_seed: np.ndarray, draws: int = 1000,
                    level: float = 0.95, seed: int = 0) -> dict:
  """Ranks of methods on one dataset with a bootstrap CI over seeds.

  ``per_seed[method, seed]`` (NaN = a diverged replica, left out of its
  mean). Seeds are resampled jointly (paired: seed s of every method shares
  the data order and the initialization), the methods' means re-ranked per
  draw. Returns ``{"rank", "rank_lo", "rank_hi", "p_best"}`` per method:
  the rank of the means, the percentile CI and how often it ranks first.
  """
  a = np.asarray(per_seed, np.float64)
  rng = np.random.default_rng(seed)
  n = a.shape[1]
  idx = rng.integers(0, n, size=(draws, n))
  with warnings.catch_warnings():  # a draw of only diverged seeds: -inf
    warnings.simplefilter("ignore", RuntimeWarning)
    means = np.stack([np.nanmean(a[:, k], 1) for k in idx])  # [draws, M]
    full = np.nanmean(a, 1)
  means = np.where(np.isnan(means), -np.inf, means)
  r = np.stack([ranks(m) for m in means])
  q = (1 - level) / 2
  point = ranks(np.where(np.isnan(full), -np.inf, full))
  return {"rank": point.tolist(),
          "rank_lo": np.quantile(r, q, axis=0).tolist(),
          "rank_hi": np.quantile(r, 1 - q, axis=0).tolist(),
          "p_best": (r <= 1.0).mean(0).tolist()}


def aggregate(scores: np.ndarray) -> dict[str, np.ndarray]:
  """Per-method aggregate of ``scores[method, dataset]``: mean and median
  accuracy, mean rank over datasets (lower = better) and wins (datasets
  where the method ranks first, ties for first each counted)."""
  s = np.asarray(scores, np.float64)
  per = np.stack([ranks(s[:, d]) for d in range(s.shape[1])], 1)
  best = s == s.max(0, keepdims=True)
  return {"mean_accuracy": s.mean(1), "mean_rank": per.mean(1),
          "median_accuracy": np.median(s, 1), "wins": best.sum(1) * 1.0}


def aggregate_ranks(scores: np.ndarray) -> dict[str, np.ndarray]:
  """The ranking each aggregation gives (rank 1 = best, ties averaged)."""
  return {k: ranks(v, AGGREGATIONS[k]) for k, v in aggregate(scores).items()}


def winners(scores: np.ndarray, methods: list[str]) -> dict[str, list[str]]:
  """Per aggregation, the method(s) ranked first (a tie lists several)."""
  return {k: [m for m, x in zip(methods, r) if x == r.min()]
          for k, r in aggregate_ranks(scores).items()}


def pairwise_orders(scores: np.ndarray) -> dict[str, np.ndarray]:
  """Per aggregation, ``sign[a, b]``: +1 if a ranks above b, -1 below,
  0 tied."""
  return {k: np.sign(r[None, :] - r[:, None])
          for k, r in aggregate_ranks(scores).items()}


def tau_matrix(rankings: list[np.ndarray]) -> np.ndarray:
  """Kendall tau-b between every two rankings of the same methods."""
  n = len(rankings)
  out = np.ones((n, n))
  for a, b in itertools.combinations(range(n), 2):
    out[a, b] = out[b, a] = kendall_tau_b(rankings[a], rankings[b])
  return out


def leave_one_out(scores: np.ndarray, methods: list[str],
                  datasets: list[str]) -> list[dict]:
  """What changes when one dataset is left out (Dehghani et al.'s task
  selection): per left-out dataset and aggregation, the winner(s) with and
  without it, whether the winner flips, and every pair of methods whose
  order (above / below / tied) differs from the full table's."""
  s = np.asarray(scores, np.float64)
  if s.shape[1] < 2:
    return []
  full_w, full_o = winners(s, methods), pairwise_orders(s)
  out = []
  for d, name in enumerate(datasets):
    rest = np.delete(s, d, axis=1)
    w, o = winners(rest, methods), pairwise_orders(rest)
    for agg in AGGREGATIONS:
      flips = [{"pair": [methods[a], methods[b]],
                "full": int(full_o[agg][a, b]), "without": int(o[agg][a, b])}
               for a, b in itertools.combinations(range(len(methods)), 2)
               if full_o[agg][a, b] != o[agg][a, b]]
      out.append({"left_out": name, "aggregation": agg,
                  "winner_full": full_w[agg], "winner_without": w[agg],
                  "winner_flips": sorted(full_w[agg]) != sorted(w[agg]),
                  "pair_flips": flips})
  return out


__all__ = ["AGGREGATIONS", "ranks", "kendall_tau_b", "bootstrap_ranks",
           "aggregate", "aggregate_ranks", "winners", "pairwise_orders",
           "tau_matrix", "leave_one_out"]
