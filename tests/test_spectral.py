"""Spectral edge pruning: the gap against a dense NumPy eigendecomposition,
the first-order proxy against the exact recomputed gap (ranking and top
choices), greedy deletion never disconnecting, the control, addition,
the largest-component rule and the impossible-count error."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from jaxticket.core.checks import ConfigError
from jaxticket.data import graphs
from jaxticket.pruning import spectral


def numpy_gap(n, edges):
  a = graphs.dense_adjacency(n, edges) + np.eye(n)
  d = a.sum(1)
  lap = np.eye(n) - a / np.sqrt(d[:, None] * d[None, :])
  return np.linalg.eigvalsh(lap)[1]


@pytest.fixture(scope="module")
def karate():
  return graphs.load_graph("karate")


@pytest.fixture(scope="module")
def sbm():
  return graphs.sbm("s", 60, 3, 6.0, 0.8, 4, 1.0, seed=0)


def test_gap_equals_dense_numpy(karate, sbm):
  for g in (karate, sbm):
    assert spectral.spectral_gap(g.num_nodes, g.edges) == pytest.approx(
        numpy_gap(g.num_nodes, g.edges), abs=1e-10)
  fd = spectral.fiedler(karate.num_nodes, karate.edges)
  deg = np.bincount(karate.edges.ravel(), minlength=34) + 1.0
  assert np.sum(deg * fd.f ** 2) == pytest.approx(1.0)  # f^T D~ f = 1


@pytest.mark.parametrize("which", ["karate", "sbm"])
def test_proxy_ranks_deletions_like_the_exact_gap(which, karate, sbm):
  g = karate if which == "karate" else sbm
  n, e = g.num_nodes, g.edges
  fd = spectral.fiedler(n, e)
  proxy = spectral.delete_proxy(e, fd)
  exact = np.array([numpy_gap(n, np.delete(e, k, 0)) - fd.gap
                    for k in range(len(e))])
  safe = np.array([spectral.num_components(n, np.delete(e, k, 0)) == 1
                   for k in range(len(e))])
  assert spearmanr(proxy[safe], exact[safe]).correlation > 0.9
  top_p = set(np.argsort(-np.where(safe, proxy, -np.inf))[:3])
  top_e = set(np.argsort(-np.where(safe, exact, -np.inf))[:3])
  assert top_p == top_e
  # First order: the proxy predicts the size of the change, not just its
  # rank (within 35% for the top choices).
  for k in top_p:
    assert abs(proxy[k] - exact[k]) < 0.35 * abs(exact[k])


def test_proxy_ranks_additions_like_the_exact_gap(karate):
  n, e = karate.num_nodes, karate.edges
  fd = spectral.fiedler(n, e)
  present = {tuple(x) for x in e.tolist()}
  pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)
                    if (i, j) not in present])
  rng = np.random.default_rng(0)
  pairs = pairs[rng.choice(len(pairs), 80, replace=False)]
  proxy = spectral.add_proxy(pairs, fd)
  exact = np.array([numpy_gap(n, np.concatenate([e, p[None]])) - fd.gap
                    for p in pairs])
  assert spearmanr(proxy, exact).correlation > 0.9
  assert np.argmax(proxy) in np.argsort(-exact)[:3]


def test_greedy_deletion_never_disconnects(karate):
  n, e = karate.num_nodes, karate.edges
  limit = spectral.max_deletable(n, e)
  assert limit == 78 - 33
  path = spectral.greedy_delete(n, e, limit, update_every=3)
  assert len(path.order) == limit and len(set(path.order.tolist())) == limit
  for k in range(limit + 1):  # every prefix is connected
    keep = spectral.keep_mask(len(e), path.order, k)
    assert spectral.num_components(n, e[keep]) == 1
  # What is left is a spanning tree; karate's bridge (0, 11) survives.
  assert (~spectral.keep_mask(len(e), path.order, limit)).sum() == limit
  bridge = int(np.flatnonzero((e[:, 0] == 0) & (e[:, 1] == 11))[0])
  assert bridge not in path.order.tolist()
  assert path.changed[0] == 0 and path.changed[-1] == limit
  with pytest.raises(ConfigError, match="graph.spectral.*at most 45"):
    spectral.greedy_delete(n, e, limit + 1, key="graph.spectral")


def test_greedy_deletion_raises_the_gap_and_random_does_not(karate, sbm):
  for g in (karate, sbm):
    n, e = g.num_nodes, g.edges
    k = int(0.2 * len(e))
    greedy = spectral.greedy_delete(n, e, k, update_every=2)
    rand = spectral.random_delete(n, e, k, seed=0)
    assert greedy.gaps[1] > greedy.gaps[0]  # Braess: deleting can help
    assert greedy.gaps[-1] > rand.gaps[-1]
    assert greedy.gaps[-1] == pytest.approx(numpy_gap(
        n, e[spectral.keep_mask(len(e), greedy.order, k)]))
    keep = spectral.keep_mask(len(e), rand.order, k)
    assert spectral.num_components(n, e[keep]) == 1


def test_greedy_addition_raises_the_gap(karate):
  n, e = karate.num_nodes, karate.edges
  path = spectral.greedy_add(n, e, 10, update_every=2)
  added = path.added
  assert added.shape == (10, 2) and (added[:, 0] < added[:, 1]).all()
  present = {tuple(x) for x in e.tolist()}
  assert not any(tuple(p) in present for p in added.tolist())
  assert len({tuple(p) for p in added.tolist()}) == 10
  assert all(b > a for a, b in zip(path.gaps, path.gaps[1:]))
  assert path.gaps[-1] == pytest.approx(numpy_gap(n, np.concatenate(
      [e, added])))


def test_only_the_largest_component_is_pruned(karate):
  n = karate.num_nodes
  # A separate triangle next to the karate club.
  e = np.concatenate([karate.edges, np.array([[34, 35], [35, 36],
                                              [34, 36]])])
  n = 37
  assert spectral.num_components(n, e) == 2
  assert spectral.spectral_gap(n, e) == pytest.approx(
      numpy_gap(34, karate.edges))
  path = spectral.greedy_delete(n, e, 20, update_every=4)
  assert max(path.order) < len(karate.edges)  # the triangle is untouched
  assert spectral.num_components(
      n, e[spectral.keep_mask(len(e), path.order, 20)]) == 2
