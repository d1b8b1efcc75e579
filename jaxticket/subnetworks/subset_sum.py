"""Strong lottery tickets by construction: random subset sum.

Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos (NeurIPS 2020, "Optimal
lottery tickets via SubsetSum"): a bias-free ReLU target of depth l is
approximated by pruning a random network of depth 2l whose width is only
O(log(d l / min(eps, delta))) times the target's (their Thm. 1): each
target weight w_ji is the sum of a subset of n random products (Lueker
1998: n = O(log 1/eps) i.i.d. uniform samples contain, with high
probability, a subset summing to within eps of any target in [-1, 1]). da Cunha, d'Amore & Natale carry the argument to
*structured* pruning with a multidimensional random subset sum: whole units
(filters) are kept or removed, and a kept unit's outgoing weight *vector*
adds to the approximation of a whole row of the target.

The construction here (ours: no reference code exists), per target layer
``y = x @ W`` (W of shape (d_in, d_out)), uses the ReLU identity
``x = relu(x) - relu(-x)``:

- a random block ``relu(x @ A) @ B``: hidden units are grouped by input,
  n units per input j; A and B have i.i.d. U[-scale, scale] entries;
- unit (j, k) keeps only its weight from input j, so it computes
  ``|a_jk| relu(+-x_j)`` (sign of a_jk); its outgoing weights ``b_jk,i``
  contribute ``c_jk,i = |a_jk| b_jk,i`` to w_ji (to -w_ji for a < 0);
- ``weights`` (unstructured, Pensia et al.): A is dense and pruned to one
  input per unit; for every (j, i) and sign an exact subset sum chooses
  which of the group's edges (unit -> output i) to keep;
- ``units`` (structured): A has one input per unit by construction (a
  grouped, 'depthwise' layer, as a depthwise convolution reads one
  channel); for every input j and sign an exact multidimensional subset sum
  chooses which of the group's units to keep, each with its whole
  outgoing vector ``c_jk,:`` approximating the row ``w_j,:``.

The block computes, coordinate by coordinate, ``x_j * P_j,:`` where
x_j >= 0 and ``x_j * N_j,:`` where x_j < 0 (P, N: the chosen subset sums of
the two sign groups, each approximating W), so its output error is bounded
by its weight errors; blocks are joined by the target's ReLUs (no ReLU
after the last). Subset sums are exact: meet-in-the-middle
over 2^n subsets for scalars, enumeration of the (at most 2^16) subsets of
a group for vectors (beyond 2^16, a local search from the greedy choice:
an upper bound on the best error).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

KINDS = ("weights", "units")
#: Largest group enumerated exactly for the vector (units) subset sum;
#: larger groups use a local search.
MAX_VECTOR_GROUP = 16
_BLOCKED = 1e3  # a padded candidate's value: no good subset contains one


def subset_bits(m: int) -> np.ndarray:
  """All 2^m subsets of m items as a (2^m, m) 0/1 matrix."""
  return np.array(list(itertools.product((0, 1), repeat=m)),
                  np.float64).reshape(2 ** m, m)


def best_subsets(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """Exact scalar subset sum, row by row: for ``values`` (T, m) and
  ``targets`` (T,), the (T, m) bool choice whose sum is closest to each
  target (meet in the middle: 2 x 2^(m/2) partial sums per row).
  Non-finite values are never chosen."""
  values = np.where(np.isfinite(values), values, _BLOCKED)
  t, m = values.shape
  h = m // 2
  left, right = subset_bits(h), subset_bits(m - h)
  ls = values[:, :h] @ left.T  # (T, 2^h)
  rs = values[:, h:] @ right.T  # (T, 2^(m-h))
  choice = np.zeros((t, m), bool)
  for r in range(t):
    order = np.argsort(rs[r], kind="stable")
    srt = rs[r][order]
    want = targets[r] - ls[r]
    pos = np.clip(np.searchsorted(srt, want), 1, len(srt) - 1)
    lo, hi = srt[pos - 1], srt[pos]
    pick = np.where(np.abs(want - lo) <= np.abs(want - hi), pos - 1, pos)
    err = np.abs(want - srt[pick])
    i = int(np.argmin(err))
    choice[r, :h] = left[i] > 0
    choice[r, h:] = right[order[pick[i]]] > 0
  return choice


def best_vector_subset(vectors: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Multidimensional subset sum: of the m vectors (m, d), a subset whose
  sum is close to ``target`` (d,) in L2. Exact (all 2^m subsets) for
  m <= :data:`MAX_VECTOR_GROUP`; beyond, the best single flip is applied
  until none helps, from the greedy forward choice (a local optimum: its
  error bounds the best subset's from above)."""
  m = vectors.shape[0]
  if m == 0:
    return np.zeros(0, bool)
  if m <= MAX_VECTOR_GROUP:
    bits = subset_bits(m)
    err = np.sum((bits @ vectors - target) ** 2, axis=1)
    return bits[int(np.argmin(err))] > 0
  chosen = np.zeros(m, bool)
  residual = target.astype(np.float64).copy()
  for _ in range(8 * m):  # greedy adds first, then flips either way
    sign = np.where(chosen, 1.0, -1.0)[:, None]  # flip: residual + sign * v
    errs = np.sum((residual + sign * vectors) ** 2, axis=1)
    i = int(np.argmin(errs))
    if errs[i] >= np.sum(residual ** 2) - 1e-15:
      break
    residual += sign[i, 0] * vectors[i]
    chosen[i] = ~chosen[i]
  return chosen


@dataclasses.dataclass
class Block:
  """One pruned random block ``relu(x @ A) @ B`` (float64), stored by
  groups: hidden unit (j, k) reads input j with weight ``unit[j, k]`` and
  writes ``out[j, k, :]`` (zeros where pruned). ``kept``/``total``: weights
  of the random block kept / present (a dense A for ``weights``, one input
  per unit for ``units``)."""
  unit: np.ndarray  # (d_in, n)
  out: np.ndarray  # (d_in, n, d_out)
  w_pos: np.ndarray  # the weights the block applies to x_j >= 0
  w_neg: np.ndarray  # ... and to x_j < 0
  kept: int
  total: int

  def matrices(self) -> tuple[np.ndarray, np.ndarray]:
    """The explicit (A, B) of the pruned block, hidden unit u = j*n + k
    (A's entries off the one-input pattern are pruned)."""
    d_in, n = self.unit.shape
    a = np.zeros((d_in, d_in * n))
    a[np.repeat(np.arange(d_in), n), np.arange(d_in * n)] = \
        self.unit.reshape(-1)
    return a, self.out.reshape(d_in * n, -1)

  def __call__(self, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``relu(x @ A) @ B`` without building A (x: (N, d_in))."""
    outs = []
    for i in range(0, len(x), chunk):
      h = np.maximum(x[i:i + chunk, :, None] * self.unit[None], 0.0)
      outs.append(np.einsum("bjk,jko->bo", h, self.out))
    return np.concatenate(outs) if outs else np.zeros((0, self.out.shape[2]))


def random_block(rng: np.random.Generator, d_in: int, d_out: int, n: int,
                 scale: float) -> tuple[np.ndarray, np.ndarray]:
  """(a, b): a (d_in, n) = the weight of unit (j, k) from its own input j
  (the rest of a dense A is drawn too, for the same stream, but never
  kept); b (d_in, n, d_out) = unit (j, k)'s outgoing weights."""
  a = rng.uniform(-scale, scale, (d_in, n))
  b = rng.uniform(-scale, scale, (d_in, n, d_out))
  return a, b


def construct_layer(w: np.ndarray, n: int, kind: str,
                    rng: np.random.Generator, scale: float = 1.0) -> Block:
  """Approximate ``x @ w`` by pruning a random block with n units per
  input (see the module docstring)."""
  if kind not in KINDS:
    raise ValueError(f"Unknown construction {kind!r}; choose one of "
                     f"{', '.join(KINDS)}.")
  d_in, d_out = w.shape
  a, b = random_block(rng, d_in, d_out, n, scale)
  c = np.abs(a)[:, :, None] * b  # (d_in, n, d_out): unit contributions
  signs = (a > 0, a < 0)
  keep_edge = np.zeros((d_in, n, d_out), bool)  # b kept
  if kind == "weights":
    for sign, (group, target) in enumerate(zip(signs, (w, -w))):
      # rows (j, i): candidates k of the group (others blocked)
      vals = np.where(group[:, :, None], c, np.inf)  # (d_in, n, d_out)
      vals = np.moveaxis(vals, 1, 2).reshape(d_in * d_out, n)
      choice = best_subsets(vals, target.reshape(-1))
      keep_edge |= np.moveaxis(choice.reshape(d_in, d_out, n), 2, 1)
    unit = keep_edge.any(axis=2)
  else:
    unit = np.zeros((d_in, n), bool)
    for group, target in zip(signs, (w, -w)):
      for j in range(d_in):
        idx = np.flatnonzero(group[j])
        chosen = best_vector_subset(c[j, idx], target[j])
        unit[j, idx[chosen]] = True
    keep_edge = np.repeat(unit[:, :, None], d_out, axis=2)
  used = np.where(keep_edge, c, 0.0)
  w_pos = np.einsum("jki,jk->ji", used, (a > 0).astype(float))
  w_neg = -np.einsum("jki,jk->ji", used, (a < 0).astype(float))
  kept = int(unit.sum() + keep_edge.sum())
  total = (d_in * d_in * n if kind == "weights" else d_in * n) + \
      d_in * n * d_out
  return Block(np.where(unit, a, 0.0), np.where(keep_edge, b, 0.0), w_pos,
               w_neg, kept, total)


def construct(kernels: list[np.ndarray], n: int, kind: str, seed: int,
              scale: float | None = None) -> list[Block]:
  """A pruned random network approximating the bias-free ReLU MLP
  ``kernels`` (forward order; ReLU between layers, none after the last).
  ``scale`` of the uniform random weights: default max(1, max |w|) (the
  theory assumes |w| <= 1 and U[-1, 1] weights)."""
  if scale is None:
    scale = max(1.0, max(float(np.abs(k).max()) for k in kernels))
  rng = np.random.default_rng(seed)
  return [construct_layer(np.asarray(k, np.float64), n, kind, rng, scale)
          for k in kernels]


def relu(x: np.ndarray) -> np.ndarray:
  return np.maximum(x, 0.0)


def target_forward(kernels: list[np.ndarray], x: np.ndarray) -> np.ndarray:
  """The bias-free ReLU MLP ``kernels`` on inputs x (N, d)."""
  for i, k in enumerate(kernels):
    x = x @ k
    if i < len(kernels) - 1:
      x = relu(x)
  return x


def network_forward(blocks: list[Block], x: np.ndarray) -> np.ndarray:
  """The pruned random network (2 layers per block) on inputs x (N, d)."""
  for i, blk in enumerate(blocks):
    x = blk(x)
    if i < len(blocks) - 1:
      x = relu(x)
  return x


def weight_error(blocks: list[Block], kernels: list[np.ndarray]) -> dict:
  """Approximation error of every block's weights (both sign groups):
  mean |w_pos - w| and |w_neg - w| over all entries, and the max."""
  diffs = np.concatenate([np.abs(w - k).reshape(-1)
                          for b, k in zip(blocks, kernels)
                          for w in (b.w_pos, b.w_neg)])
  return {"mean": float(diffs.mean()), "max": float(diffs.max())}


__all__ = ["KINDS", "Block", "best_subsets", "best_vector_subset",
           "construct_layer", "construct", "target_forward",
           "network_forward", "weight_error", "subset_bits"]
