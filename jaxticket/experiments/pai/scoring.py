"""The examples data-dependent scorers see, clean or corrupted as in Su et
al.'s (NeurIPS 2020, Sec. 4) checks, one set per replica.

- ``clean``: ``pai.score_examples`` training examples, per class when
  ``pai.score_balanced`` (GraSP's and Su et al.'s ``samples_per_class``;
  Synaptic-Flow draws at random).
- ``random_labels``: the clean draw's examples with every label replaced
  by a uniformly random class (their ``CIFAR10RandomLabels``,
  corrupt_prob=1; their per-class draw then balances the random labels,
  ours the true ones).
- ``shuffled_pixels``: every example's input values permuted by its own
  random permutation, AND random labels: their ``--shufflePixel`` dataset
  is built on the random-label one ("shufflePixel AND RANDLABEL").
- ``half_data``: half as many examples, drawn from one fixed half of the
  training set (Su et al.'s "half dataset": the pruning sees half the data).

Draws are seeded by (seed, variant): NumPy, on the host, before the
vmapped scoring.

A method that *trains* its mask (GEM-MINER) sees a whole training set
instead: :func:`dataset` corrupts it the same way (every label random;
pixels permuted per example plus random labels; one fixed half), once per
run since the replicas of one program share their data.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

VARIANTS = ("clean", "random_labels", "shuffled_pixels", "half_data")


def draw(train_y: np.ndarray, pool: np.ndarray, n: int, num_classes: int,
         balanced: bool, rng: np.random.Generator) -> np.ndarray:
  """Indices of ``n`` examples from ``pool``: ``n // classes`` per class
  (the rest at random) when ``balanced``, else uniformly at random."""
  order = rng.permutation(pool)
  if not balanced:
    return order[:n]
  per = n // num_classes
  picked = [order[train_y[order] == c][:per] for c in range(num_classes)]
  chosen = np.concatenate(picked) if picked else np.zeros(0, np.int64)
  rest = np.setdiff1d(order, chosen, assume_unique=True)
  extra = rng.permutation(rest)[:n - len(chosen)]
  return np.concatenate([chosen, extra]).astype(np.int64)


def examples(data, seed: int, variant: str, n: int, balanced: bool
             ) -> tuple[np.ndarray, np.ndarray]:
  """(normalized inputs [n', ...], labels [n']) for one replica."""
  if variant not in VARIANTS:
    raise ValueError(f"Unknown scoring data variant {variant!r}.")
  # The corrupted variants corrupt the clean draw's examples; half_data
  # draws half as many from its fixed half of the training set.
  rng = np.random.default_rng([seed, zlib.crc32(variant.encode())])
  y_all = np.asarray(data.train_y)
  pool = np.arange(len(y_all))
  if variant == "half_data":
    half = np.random.default_rng([seed, 1]).permutation(pool)
    pool, n = np.sort(half[:len(pool) // 2]), max(1, n // 2)
  idx = draw(y_all, pool, n, data.num_classes, balanced,
             np.random.default_rng([seed, 0]))
  x = np.asarray(data.train_x[idx])
  y = y_all[idx].astype(np.int32)
  if variant in ("random_labels", "shuffled_pixels"):
    y = rng.integers(0, data.num_classes, size=len(y)).astype(np.int32)
  if variant == "shuffled_pixels":
    flat = x.reshape(len(x), -1)
    flat = np.stack([row[rng.permutation(row.size)] for row in flat])
    x = flat.reshape(x.shape)
  return np.asarray(data.normalize(x), np.float32), y


def dataset(data, seed: int, variant: str):
  """``data`` with its training split corrupted as ``variant`` (the
  validation and test splits untouched): ``clean`` as is,
  ``random_labels`` every label uniformly random, ``shuffled_pixels`` every
  example's values permuted by its own permutation AND random labels,
  ``half_data`` a fixed half of the examples."""
  if variant not in VARIANTS:
    raise ValueError(f"Unknown scoring data variant {variant!r}.")
  if variant == "clean":
    return data
  rng = np.random.default_rng([seed, zlib.crc32(variant.encode()), 7])
  x, y = np.asarray(data.train_x), np.asarray(data.train_y)
  if variant == "half_data":
    half = np.sort(np.random.default_rng([seed, 1]).permutation(len(y))[
        :len(y) // 2])
    return dataclasses.replace(data, train_x=x[half], train_y=y[half])
  y = rng.integers(0, data.num_classes, size=len(y)).astype(y.dtype)
  if variant == "shuffled_pixels":
    flat = x.reshape(len(x), -1)
    order = np.argsort(rng.random(flat.shape), axis=1)
    x = np.take_along_axis(flat, order, axis=1).reshape(x.shape)
  return dataclasses.replace(data, train_x=x, train_y=y)


def stacked(data, seeds: list[int], variant: str, n: int, balanced: bool
            ) -> tuple[np.ndarray, np.ndarray]:
  """:func:`examples` for every replica, stacked on a leading axis."""
  pairs = [examples(data, s, variant, n, balanced) for s in seeds]
  return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))


__all__ = ["VARIANTS", "draw", "examples", "stacked", "dataset"]
