"""The graph experiment's host-side pieces reduced to what is known: the
Dirichlet energy is tr(H^T L H) of the self-looped normalized Laplacian,
per-split rows merge into one sample of splits x seeds, the predicted UGS
edge counts are what the allocator prunes, and the edge masks of the
spectral settings are the deletion prefixes."""

import numpy as np
import pytest

from jaxticket import config
from jaxticket.data import graphs
from jaxticket.experiments.graph import graph as graph_exp
from jaxticket.experiments.graph import spectral_part, tickets
from jaxticket.pruning import spectral


def test_dirichlet_energy_is_the_laplacian_quadratic_form():
  g = graphs.karate()
  h = np.random.default_rng(0).normal(size=(3, g.num_nodes, 5))
  per_node, rayleigh = spectral_part.dirichlet(h, g)
  lap, _ = spectral.normalized_laplacian(g.num_nodes, g.edges)
  lap = lap.toarray()
  want = np.array([np.trace(x.T @ lap @ x) for x in h])
  np.testing.assert_allclose(per_node, want / g.num_nodes, rtol=1e-10)
  np.testing.assert_allclose(rayleigh, want / (h ** 2).sum((1, 2)),
                             rtol=1e-10)
  assert np.all((rayleigh >= 0) & (rayleigh <= 2))
  # A constant signal over D~^1/2 (the smoothest one) has zero energy.
  deg = np.bincount(g.edges.ravel(), minlength=g.num_nodes) + 1.0
  flat = np.sqrt(deg)[None, :, None] * np.ones((1, 1, 2))
  assert spectral_part.dirichlet(flat, g)[0][0] == pytest.approx(0, abs=1e-12)


def test_aggregate_pools_splits_and_seeds():
  rows = [{"graph": "k", "setting": "ugs", "test": [0.5, 0.7], "diverged": 0,
           "edges": 10.0},
          {"graph": "k", "setting": "ugs", "test": [0.6, 0.8], "diverged": 1,
           "edges": 12.0}]
  (row,) = graph_exp.aggregate(rows, ("graph", "setting"), ("test",),
                               ("edges",))
  acc = row["test_accuracy"]
  assert acc["n"] == 4 and acc["mean"] == pytest.approx(0.65)
  v = np.array([0.5, 0.7, 0.6, 0.8])
  assert acc["ci95"] == pytest.approx(3.182446 * v.std(ddof=1) / 2, rel=1e-5)
  assert row["edges"] == 11.0 and row["diverged"] == 1 and row["splits"] == 2


@pytest.mark.parametrize("edges,fraction", [(78, 0.05), (757, 0.05),
                                             (100, 0.2)])
def test_predicted_deleted_matches_the_pruned_counts(edges, fraction):
  """The impossible-sparsity check predicts what random pruning (the same
  allocator as UGS's) actually removes, round by round."""
  mask = {"edges": np.ones((1, edges), bool),
          "w": {"kernel": np.ones((1, 4, 4), bool)}}
  masks = tickets.random_rounds(mask, [0], 4, fraction, 0.5)
  got = [edges - int(m["edges"].sum()) for m in masks]
  assert tickets.predicted_deleted(edges, fraction, 4) == got
  # 78 edges at 5%: 4 (3.9), 4 (3.7), 4 (3.5 rounds up), 3 (3.3)
  if edges == 78:
    assert got == [4, 8, 12, 15]


def test_spectral_settings_are_deletion_prefixes():
  cfg = config.load("configs/graph.py:tiny")
  g = graphs.karate()
  path = spectral_part.paths(cfg, g, delete=16, add=8, seeds=[0, 1],
                             random_delete=16)
  extra = np.asarray(path["add"]["added"]).reshape(-1, 2)
  structure = np.concatenate([g.edges, extra])
  order = np.asarray(path["delete"]["order"])
  keep = spectral_part.edge_masks(g, path, structure, "spectral_delete",
                                  0.2, 0)
  assert keep.sum() == g.num_edges - 16 and not keep[g.num_edges:].any()
  assert not keep[order[:16]].any()
  assert spectral.num_components(g.num_nodes, structure[keep]) == 1
  add = spectral_part.edge_masks(g, path, structure, "spectral_add", 0.1, 0)
  assert add[:g.num_edges].all() and add.sum() == g.num_edges + 8
  rand = [spectral_part.edge_masks(g, path, structure, "random_delete", 0.2,
                                   i) for i in (0, 1)]
  assert all(r.sum() == g.num_edges - 16 for r in rand)
  assert (rand[0] != rand[1]).any()  # a random order per seed


def test_needed_deletions_covers_the_spectral_ticket():
  cfg = config.load("configs/graph.py:tiny")
  greedy, rand, add = graph_exp.needed_deletions(cfg, graphs.karate())
  assert rand == round(0.2 * 78) and add == round(0.1 * 78)
  assert greedy == max(rand, tickets.predicted_deleted(78, 0.05, 2)[-1])
