"""Spectral edge pruning (and addition): greedy spectral-gap optimization
with a first-order proxy, after Jamadandi, Rubio-Madrigal & Burkholz
(NeurIPS 2024, "Spectral graph pruning against over-squashing and
over-smoothing"; code: AdarshMJ/SpectralPruningBraess).

Data-free and host-side (NumPy/SciPy; one graph, not per replica): the
result is an *order* of edges to delete (or pairs to add), from which an
edge mask at any sparsity is a prefix.

The spectral gap is lambda_1 of the normalized Laplacian of the graph with
self-loops, ``L = I - D~^-1/2 (A + I) D~^-1/2`` (``I - A_hat`` of the GCN),
on the largest connected component. With (lambda, v) its Fiedler pair and
``f = D~^-1/2 v`` (so ``f^T D~ f = 1``), the first-order change of lambda
when edge (i, j) is deleted is (perturbing ``(D~ - A~) f = lambda D~ f``;
both D~_ii and D~_jj drop by one)

    d_lambda(delete i~j) = lambda (f_i^2 + f_j^2) - (f_i - f_j)^2

and the negative of that for adding (i, j): the paper's proxy,
``(u_i - u_j)^2 - lambda (u_i^2 + u_j^2)`` up to the sign of the change.
We follow this derivation; the authors' code additionally normalizes each
node's row of the eigenvector matrix to unit length (twice), which changes
the ranking, so we do not follow the code there.

Greedy (as the code's ``process_and_update_edges`` with
``updating_period``): rank all candidates by the proxy at the current
eigenpair, apply the best ``update_every`` of them one by one, skipping a
deletion that would disconnect the graph (it is never applied), then
recompute the eigenpair; repeat until ``count`` edges changed. Like the
code, the best candidate is taken even when its proxy is negative.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import threadpoolctl

from jaxticket.core.checks import ConfigError

#: Largest component size solved with a dense eigendecomposition.
DENSE_LIMIT = 2500


def _csr(num_nodes: int, edges: np.ndarray) -> sp.csr_matrix:
  e = np.asarray(edges, np.int64).reshape(-1, 2)
  data = np.ones(2 * len(e))
  rows = np.concatenate([e[:, 0], e[:, 1]])
  cols = np.concatenate([e[:, 1], e[:, 0]])
  return sp.csr_matrix((data, (rows, cols)), shape=(num_nodes, num_nodes))


def components(num_nodes: int, edges: np.ndarray) -> np.ndarray:
  """Component label per node."""
  return sp.csgraph.connected_components(_csr(num_nodes, edges),
                                         directed=False)[1]


def num_components(num_nodes: int, edges: np.ndarray) -> int:
  return int(components(num_nodes, edges).max() + 1) if num_nodes else 0


def largest_component(num_nodes: int, edges: np.ndarray) -> np.ndarray:
  """Bool (N,): the nodes of the largest connected component (ties: the
  one holding the lowest node id)."""
  labels = components(num_nodes, edges)
  return labels == np.bincount(labels).argmax()


def normalized_laplacian(num_nodes: int, edges: np.ndarray
                         ) -> tuple[sp.csr_matrix, np.ndarray]:
  """(L, degrees with self-loop) for ``L = I - D~^-1/2 (A + I) D~^-1/2``."""
  a = _csr(num_nodes, edges) + sp.eye(num_nodes, format="csr")
  deg = np.asarray(a.sum(1)).ravel()
  inv = sp.diags(1.0 / np.sqrt(deg))
  return (sp.eye(num_nodes, format="csr") - inv @ a @ inv).tocsr(), deg


@dataclasses.dataclass(frozen=True)
class Fiedler:
  """lambda_1 and ``f = D~^-1/2 v`` (zero off the component), on the
  largest connected component."""
  gap: float
  f: np.ndarray
  nodes: np.ndarray  # bool (N,): the component


def fiedler(num_nodes: int, edges: np.ndarray) -> Fiedler:
  """The spectral gap and Fiedler vector of the largest component."""
  nodes = largest_component(num_nodes, edges)
  idx = np.flatnonzero(nodes)
  f = np.zeros(num_nodes)
  if len(idx) < 2:
    return Fiedler(0.0, f, nodes)
  remap = -np.ones(num_nodes, np.int64)
  remap[idx] = np.arange(len(idx))
  e = np.asarray(edges, np.int64).reshape(-1, 2)
  e = remap[e[nodes[e[:, 0]] & nodes[e[:, 1]]]]
  lap, deg = normalized_laplacian(len(idx), e)
  # One BLAS thread: these eigenproblems are small, and a threaded OpenBLAS
  # on a busy 2-core machine was 17x slower (0.83 s vs 0.05 s at N = 290).
  with threadpoolctl.threadpool_limits(1, "blas"):
    if len(idx) <= DENSE_LIMIT:
      vals, vecs = scipy.linalg.eigh(lap.toarray(), subset_by_index=[0, 1])
    else:  # shift-invert just below the zero eigenvalue
      vals, vecs = spla.eigsh(lap, k=2, sigma=-1e-2, which="LM")
      order = np.argsort(vals)
      vals, vecs = vals[order], vecs[:, order]
  f[idx] = vecs[:, 1] / np.sqrt(deg)
  return Fiedler(float(vals[1]), f, nodes)


def spectral_gap(num_nodes: int, edges: np.ndarray) -> float:
  """lambda_1 of the self-looped normalized Laplacian of the largest
  component (0 for a single node)."""
  return fiedler(num_nodes, edges).gap


def delete_proxy(edges: np.ndarray, fd: Fiedler) -> np.ndarray:
  """First-order change of the gap when each edge is deleted."""
  fi, fj = fd.f[edges[:, 0]], fd.f[edges[:, 1]]
  return fd.gap * (fi ** 2 + fj ** 2) - (fi - fj) ** 2


def add_proxy(pairs: np.ndarray, fd: Fiedler) -> np.ndarray:
  """First-order change of the gap when each pair is added as an edge."""
  fi, fj = fd.f[pairs[:, 0]], fd.f[pairs[:, 1]]
  return (fi - fj) ** 2 - fd.gap * (fi ** 2 + fj ** 2)


@dataclasses.dataclass(frozen=True)
class Path:
  """The result of a greedy run: ``order`` (indices into the input edges,
  in deletion order) or ``added`` (pairs, in addition order), and the
  exact gap after each recomputation: ``gaps[t]`` after ``changed[t]``
  edges (``changed[0] = 0``: the input graph)."""
  changed: list[int]
  gaps: list[float]
  order: np.ndarray | None = None
  added: np.ndarray | None = None


def max_deletable(num_nodes: int, edges: np.ndarray) -> int:
  """How many edges of the largest component can go without splitting it
  (all but a spanning tree)."""
  nodes = largest_component(num_nodes, edges)
  inside = nodes[edges[:, 0]] & nodes[edges[:, 1]]
  return int(inside.sum() - (nodes.sum() - 1))


class _Connectivity:
  """Adjacency sets of the current graph, to test whether deleting an
  edge keeps its endpoints connected (bidirectional-free BFS from i)."""

  def __init__(self, num_nodes: int, edges: np.ndarray):
    self.adj = [set() for _ in range(num_nodes)]
    for i, j in np.asarray(edges):
      self.adj[int(i)].add(int(j))
      self.adj[int(j)].add(int(i))

  def remove_if_safe(self, i: int, j: int) -> bool:
    """Delete i~j unless that disconnects i from j (then leave it)."""
    self.adj[i].discard(j)
    self.adj[j].discard(i)
    seen, frontier = {i}, [i]
    while frontier:
      nxt = []
      for u in frontier:
        for w in self.adj[u]:
          if w == j:
            return True
          if w not in seen:
            seen.add(w)
            nxt.append(w)
      frontier = nxt
    self.adj[i].add(j)
    self.adj[j].add(i)
    return False


def _check_count(count: int, limit: int, key: str, what: str) -> None:
  if not 0 <= count <= limit:
    raise ConfigError(
        f"{key}: {what} {count} edges is impossible; at most {limit} can be "
        "deleted without disconnecting the graph (its largest component "
        "needs a spanning tree). Lower the sparsity.")


def greedy_delete(num_nodes: int, edges: np.ndarray, count: int,
                  update_every: int = 1, key: str = "graph.spectral"
                  ) -> Path:
  """Delete ``count`` edges of the largest component, each time the one
  whose deletion the proxy says raises the gap most, never disconnecting;
  the eigenpair is recomputed every ``update_every`` deletions."""
  edges = np.asarray(edges, np.int64).reshape(-1, 2)
  _check_count(count, max_deletable(num_nodes, edges), key, "deleting")
  alive = np.ones(len(edges), bool)
  conn = _Connectivity(num_nodes, edges)
  fd = fiedler(num_nodes, edges)
  order, changed, gaps = [], [0], [fd.gap]
  while len(order) < count:
    inside = alive & fd.nodes[edges[:, 0]] & fd.nodes[edges[:, 1]]
    cand = np.flatnonzero(inside)
    scores = delete_proxy(edges[cand], fd)
    done = 0
    for e in cand[np.argsort(-scores, kind="stable")]:
      if conn.remove_if_safe(int(edges[e, 0]), int(edges[e, 1])):
        alive[e] = False
        order.append(int(e))
        done += 1
        if done == update_every or len(order) == count:
          break
    if done == 0:  # nothing deletable left (max_deletable rules it out)
      break
    fd = fiedler(num_nodes, edges[alive])
    changed.append(len(order))
    gaps.append(fd.gap)
  return Path(changed, gaps, order=np.array(order, np.int64))


def random_delete(num_nodes: int, edges: np.ndarray, count: int, seed: int,
                  key: str = "graph.spectral", gap_every: int = 0) -> Path:
  """The control: delete ``count`` random edges of the largest component,
  never disconnecting (a disconnecting draw is skipped); exact gaps every
  ``gap_every`` deletions (0: only at the end)."""
  edges = np.asarray(edges, np.int64).reshape(-1, 2)
  _check_count(count, max_deletable(num_nodes, edges), key, "deleting")
  nodes = largest_component(num_nodes, edges)
  inside = np.flatnonzero(nodes[edges[:, 0]] & nodes[edges[:, 1]])
  rng = np.random.default_rng(seed)
  conn = _Connectivity(num_nodes, edges)
  alive = np.ones(len(edges), bool)
  order, changed, gaps = [], [0], [spectral_gap(num_nodes, edges)]
  for e in rng.permutation(inside):
    if len(order) == count:
      break
    if conn.remove_if_safe(int(edges[e, 0]), int(edges[e, 1])):
      alive[e] = False
      order.append(int(e))
      if gap_every and len(order) % gap_every == 0 and len(order) < count:
        changed.append(len(order))
        gaps.append(spectral_gap(num_nodes, edges[alive]))
  if changed[-1] != len(order):
    changed.append(len(order))
    gaps.append(spectral_gap(num_nodes, edges[alive]))
  return Path(changed, gaps, order=np.array(order, np.int64))


def greedy_add(num_nodes: int, edges: np.ndarray, count: int,
               update_every: int = 1, max_candidates: int = 200_000,
               seed: int = 0) -> Path:
  """Add ``count`` new edges inside the largest component, each time the
  non-edge whose addition the proxy says raises the gap most; the
  eigenpair is recomputed every ``update_every`` additions. Candidates:
  every non-adjacent pair of the component, or a seeded random sample of
  ``max_candidates`` of them when there are more."""
  edges = np.asarray(edges, np.int64).reshape(-1, 2)
  n = num_nodes
  present = set((edges[:, 0] * n + edges[:, 1]).tolist())
  fd = fiedler(n, edges)
  idx = np.flatnonzero(fd.nodes)
  if len(idx) * (len(idx) - 1) // 2 <= max_candidates:
    i, j = np.triu_indices(len(idx), 1)
    pairs = np.stack([idx[i], idx[j]], 1)
  else:
    rng = np.random.default_rng(seed)
    pairs = np.sort(rng.choice(idx, size=(max_candidates, 2)), axis=1)
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
  codes = pairs[:, 0] * n + pairs[:, 1]
  pairs = pairs[~np.isin(codes, np.fromiter(present, np.int64))]
  if count > len(pairs):
    raise ConfigError(f"graph.spectral: adding {count} edges is impossible;"
                      f" only {len(pairs)} candidate pairs exist.")
  free = np.ones(len(pairs), bool)
  current = edges
  added, changed, gaps = [], [0], [fd.gap]
  while len(added) < count:
    cand = np.flatnonzero(free)
    scores = add_proxy(pairs[cand], fd)
    take = cand[np.argsort(-scores, kind="stable")][
        :min(update_every, count - len(added))]
    free[take] = False
    added += [pairs[t] for t in take]
    current = np.concatenate([edges, np.array(added, np.int64)])
    fd = fiedler(n, current)
    changed.append(len(added))
    gaps.append(fd.gap)
  return Path(changed, gaps, added=np.array(added, np.int64).reshape(-1, 2))


def keep_mask(num_edges: int, order: np.ndarray, deleted: int) -> np.ndarray:
  """Bool (E,): every edge but the first ``deleted`` of ``order``."""
  keep = np.ones(num_edges, bool)
  keep[np.asarray(order[:deleted], np.int64)] = False
  return keep


__all__ = ["Fiedler", "Path", "fiedler", "spectral_gap", "delete_proxy",
           "add_proxy", "greedy_delete", "greedy_add", "random_delete",
           "keep_mask", "normalized_laplacian", "components",
           "num_components", "largest_component", "max_deletable",
           "DENSE_LIMIT"]
