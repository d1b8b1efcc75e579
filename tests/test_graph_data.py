"""Graph datasets: every builder on a small generated fixture in its real
file format (never the real files), splits, the SBM's homophily, and the
one-line errors for missing data."""

import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from jaxticket.core.checks import ConfigError
from jaxticket.data import graphs


def test_simple_edges_and_dense_adjacency():
  e = graphs.simple_edges(np.array([[2, 1], [1, 2], [0, 0], [0, 3],
                                    [3, 0]]), 4)
  np.testing.assert_array_equal(e, [[0, 3], [1, 2]])
  a = graphs.dense_adjacency(4, e)
  np.testing.assert_array_equal(a, a.T)
  assert a.sum() == 4 and np.trace(a) == 0


def test_karate_club():
  g = graphs.load_graph("karate")
  assert (g.num_nodes, g.num_edges, g.num_classes) == (34, 78, 2)
  assert np.bincount(g.labels).tolist() == [17, 17]
  assert g.labels[0] == 0 and g.labels[33] == 1  # Mr. Hi, the officer
  assert (g.edges[:, 0] < g.edges[:, 1]).all()


@pytest.mark.parametrize("h", [0.9, 0.1])
def test_sbm_homophily_is_dialed(h):
  g = graphs.sbm("s", 600, 3, 12.0, h, 8, 1.0, seed=3)
  same = g.labels[g.edges[:, 0]] == g.labels[g.edges[:, 1]]
  assert abs(same.mean() - h) < 0.03
  assert abs(2 * g.num_edges / g.num_nodes - 12.0) < 1.0
  again = graphs.sbm("s", 600, 3, 12.0, h, 8, 1.0, seed=3)
  np.testing.assert_array_equal(g.edges, again.edges)  # seeded
  np.testing.assert_array_equal(g.features, again.features)


def test_random_splits_are_stratified_seeded_and_same_sized():
  labels = np.repeat(np.arange(3), [10, 20, 30])
  a = graphs.split_nodes(labels, 0.2, 0.3, seed=0)
  b = graphs.split_nodes(labels, 0.2, 0.3, seed=1)
  assert [len(s) for s in a] == [len(s) for s in b] == [12, 18, 30]
  assert not all(np.array_equal(x, y) for x, y in zip(a, b))
  allnodes = np.concatenate(a)
  assert len(np.unique(allnodes)) == 60  # disjoint and complete
  assert np.bincount(labels[a[0]]).tolist() == [2, 4, 6]
  with pytest.raises(ConfigError, match="graph.train_fraction"):
    graphs.split_nodes(labels, 0.6, 0.5, seed=0)


def write_drosophila(folder, side="left"):
  rng = np.random.default_rng(0)
  n = 12
  counts = rng.integers(0, 3, size=(n, n)) * (rng.random((n, n)) < 0.3)
  np.fill_diagonal(counts, 0)
  types = np.array(list("KKKKPPPOOIIK"))
  np.savetxt(os.path.join(folder, f"{side}_adjacency.csv"), counts, fmt="%d")
  np.savetxt(os.path.join(folder, f"{side}_cell_labels.csv"), types, fmt="%s")
  return counts, types


def test_drosophila_from_graspologic_layout(tmp_path):
  counts, types = write_drosophila(str(tmp_path))
  g = graphs.load_graph("drosophila_left",
                        graphs.Sources(drosophila_dir=str(tmp_path)))
  assert g.class_names == ("I", "K", "O", "P")
  np.testing.assert_array_equal(np.array(g.class_names)[g.labels], types)
  want = ((counts + counts.T) > 0).astype(float)
  np.testing.assert_array_equal(graphs.dense_adjacency(12, g.edges), want)
  np.testing.assert_array_equal(g.features, np.eye(12))


def test_missing_connectome_says_how_to_get_it(tmp_path):
  with pytest.raises(ConfigError) as e:
    graphs.load_graph("drosophila_right",
                      graphs.Sources(drosophila_dir=str(tmp_path)))
  msg = str(e.value)
  assert "\n" not in msg and "pip install --no-deps graspologic" in msg
  assert "graph.drosophila_dir" in msg


def write_planetoid(folder, name="cora"):
  """A 10-node graph in the Planetoid layout: x/y = 2 training nodes,
  allx/ally = the 6 first nodes, tx/ty = 4 test nodes listed shuffled in
  test.index (as the real files), plus one isolated test id (Citeseer)."""
  rng = np.random.default_rng(1)
  feats = rng.integers(0, 2, size=(11, 5)).astype(np.float32)
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
  onehot = np.eye(3)[labels]
  test_ids = np.array([8, 6, 7, 9])  # node 10 exists in no file: isolated
  parts = {"x": sp.csr_matrix(feats[:2]), "y": onehot[:2],
           "allx": sp.csr_matrix(feats[:6]), "ally": onehot[:6],
           "tx": sp.csr_matrix(feats[test_ids]), "ty": onehot[test_ids],
           "graph": {0: [1, 2], 1: [0, 3], 2: [0], 3: [1, 9], 4: [5],
                     5: [4, 5], 6: [7], 7: [6, 8], 8: [7], 9: [3]}}
  for k, v in parts.items():
    with open(os.path.join(folder, f"ind.{name}.{k}"), "wb") as f:
      pickle.dump(v, f)
  with open(os.path.join(folder, f"ind.{name}.test.index"), "w") as f:
    f.write("\n".join(str(i) for i in test_ids) + "\n")
  return feats, labels


def test_planetoid_layout(tmp_path):
  feats, labels = write_planetoid(str(tmp_path))
  g = graphs.load_graph("cora", graphs.Sources(planetoid_dir=str(tmp_path)))
  # Nodes 0-5 from allx, then test range 6..9 placed by test.index.
  assert g.num_nodes == 10
  np.testing.assert_array_equal(g.features, feats[:10])
  np.testing.assert_array_equal(g.labels, labels[:10])
  np.testing.assert_array_equal(
      g.edges, [[0, 1], [0, 2], [1, 3], [3, 9], [4, 5], [6, 7], [7, 8]])
  tr, va, te = g.public_split
  assert tr.tolist() == [0, 1] and va.tolist() == [2, 3, 4, 5]
  assert te.tolist() == [6, 7, 8, 9]


def test_planetoid_isolated_test_nodes_get_zero_rows(tmp_path):
  feats, labels = write_planetoid(str(tmp_path), "citeseer")
  with open(tmp_path / "ind.citeseer.test.index", "w") as f:
    f.write("8\n6\n7\n10\n")  # id 9 is absent from tx: isolated node
  tx = sp.csr_matrix(feats[[8, 6, 7, 10]])
  ty = np.eye(3)[labels[[8, 6, 7, 10]]]
  for k, v in (("tx", tx), ("ty", ty)):
    with open(tmp_path / f"ind.citeseer.{k}", "wb") as f:
      pickle.dump(v, f)
  g = graphs.load_graph("citeseer",
                        graphs.Sources(planetoid_dir=str(tmp_path)))
  assert g.num_nodes == 11
  np.testing.assert_array_equal(g.features[9], 0)
  np.testing.assert_array_equal(g.features[10], feats[10])
  assert g.labelled is not None and not g.labelled[9]
  tr, va, te = graphs.split_nodes(g.labels, 0.2, 0.2, 0, g.labelled)
  assert 9 not in np.concatenate([tr, va, te])


def test_missing_planetoid_files_are_one_line(tmp_path):
  with pytest.raises(ConfigError, match="graph.dir") as e:
    graphs.load_graph("pubmed")
  assert "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="lacks ind.pubmed.x"):
    graphs.load_graph("pubmed", graphs.Sources(planetoid_dir=str(tmp_path)))


def test_unknown_graph_name():
  with pytest.raises(ConfigError, match=r"graph\.graphs.*karate"):
    graphs.load_graph("karat")


def test_node_dataset_is_what_the_trainer_reads():
  g = graphs.load_graph("karate")
  d = graphs.node_dataset(g, 0, 0.3, 0.2, extra_edges=np.array([[0, 33]]))
  assert d.input_shape == () and d.train_x.dtype == np.int32
  np.testing.assert_array_equal(d.train_y, g.labels[d.train_x])
  ctx = d.context
  assert ctx["senders"].shape == (79,) and ctx["receivers"][-1] == 33
  with pytest.raises(ConfigError, match="graph.split=public"):
    graphs.node_dataset(g, 0, 0.3, 0.2, public=True)
