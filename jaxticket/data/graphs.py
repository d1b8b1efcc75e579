"""Graphs for node classification, all offline, with seeded node splits.

A :class:`Graph` is an undirected simple graph (each edge once, ``i < j``,
no self-loops) with node features and labels. :func:`node_dataset` turns
one train/validation/test split of its nodes into what the platform's
:class:`~jaxticket.core.loop.Trainer` reads: the *examples* are node
indices (``train_x`` ...), and the graph (features and edge list) is the
shared ``context`` every forward pass reads whole (full-batch training, as
GCN and UGS train). Nothing here imports jax.

Sources (:data:`GRAPHS`):

- ``karate``: Zachary's karate club from networkx (34 nodes, 78 edges, the
  two clubs after the split as labels; identity features).
- ``sbm_homophilous`` / ``sbm_heterophilous``: stochastic block models
  generated here (seeded) with a chosen homophily h, the expected fraction
  of a node's edges that stay inside its class, and Gaussian node features
  around a class mean (a contextual SBM, Deshpande et al. 2018), so the
  graph helps (high h) or misleads (low h) a GCN.
- ``drosophila_left`` / ``drosophila_right``: the larval Drosophila
  mushroom-body connectome (Eichler et al. 2017) shipped in the graspologic
  wheel (209 / 213 neurons, cell types K, P, O, I as labels). Read by path
  with ``np.loadtxt``; graspologic is never imported. Synapse counts are
  directed; an edge joins i and j when either connects to the other.
  Identity features.
- ``cora`` / ``citeseer`` / ``pubmed``: the Planetoid files
  (``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}``, Yang et al.
  2016, as Kipf & Welling's and UGS's loaders read them) from a local
  folder; none can be downloaded here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pickle
from typing import Any, Callable

import numpy as np

from jaxticket.core.checks import ConfigError, check_choice


@dataclasses.dataclass(frozen=True)
class Graph:
  """An undirected simple graph with node features and integer labels.

  ``edges`` is (E, 2) int32 with ``edges[:, 0] < edges[:, 1]``, unique and
  sorted; self-loops are not stored (the GCN adds them). ``public_split``:
  the (train, val, test) node indices of the dataset's standard split,
  where it has one (Planetoid). ``labelled``: bool (N,) where a node has
  a label (None: all do); random splits draw from labelled nodes only.
  """
  name: str
  edges: np.ndarray
  features: np.ndarray
  labels: np.ndarray
  class_names: tuple[str, ...]
  public_split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
  labelled: np.ndarray | None = None

  @property
  def num_nodes(self) -> int:
    return int(self.labels.shape[0])

  @property
  def num_edges(self) -> int:
    return int(self.edges.shape[0])

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def simple_edges(pairs: np.ndarray, num_nodes: int) -> np.ndarray:
  """(E, 2) int32 undirected edges from any (M, 2) pairs: self-loops and
  duplicates dropped, each edge once as ``(min, max)``, sorted."""
  pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
  if pairs.size and (pairs.min() < 0 or pairs.max() >= num_nodes):
    raise ValueError(f"edge endpoints must be in [0, {num_nodes}).")
  lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0],
                                                             pairs[:, 1])
  keep = lo != hi
  codes = np.unique(lo[keep] * num_nodes + hi[keep])
  return np.stack([codes // num_nodes, codes % num_nodes], 1).astype(np.int32)


def dense_adjacency(num_nodes: int, edges: np.ndarray,
                    weights: np.ndarray | None = None) -> np.ndarray:
  """The symmetric (N, N) float64 adjacency of an edge list (no
  self-loops), with optional per-edge weights."""
  a = np.zeros((num_nodes, num_nodes))
  w = np.ones(len(edges)) if weights is None else np.asarray(weights, float)
  a[edges[:, 0], edges[:, 1]] = w
  a[edges[:, 1], edges[:, 0]] = w
  return a


# --- sources ---------------------------------------------------------------

def karate() -> Graph:
  """Zachary's karate club (networkx): clubs 'Mr. Hi' = 0, 'Officer' = 1."""
  import networkx as nx
  g = nx.karate_club_graph()
  n = g.number_of_nodes()
  names = ("Mr. Hi", "Officer")
  labels = np.array([names.index(g.nodes[i]["club"]) for i in range(n)],
                    np.int32)
  return Graph("karate", simple_edges(np.array(g.edges()), n),
               np.eye(n, dtype=np.float32), labels, names)


def sbm(name: str, nodes: int, classes: int, degree: float,
        homophily: float, feature_dim: int, feature_signal: float,
        seed: int) -> Graph:
  """A contextual stochastic block model (seeded).

  ``classes`` equal blocks; a node expects ``homophily * degree`` edges
  inside its block and ``(1 - homophily) * degree`` to the others (so h is
  the expected edge homophily). Features: N(mu_y, I) in ``feature_dim``
  dimensions, the class means random directions of norm
  ``feature_signal``.
  """
  rng = np.random.default_rng(seed)
  labels = (np.arange(nodes) * classes // nodes).astype(np.int32)
  size = nodes / classes
  p_in = min(1.0, homophily * degree / max(size - 1, 1))
  p_out = min(1.0, (1 - homophily) * degree / max(nodes - size, 1))
  i, j = np.triu_indices(nodes, 1)
  p = np.where(labels[i] == labels[j], p_in, p_out)
  hit = rng.random(p.shape) < p
  edges = simple_edges(np.stack([i[hit], j[hit]], 1), nodes)
  means = rng.normal(size=(classes, feature_dim))
  means *= feature_signal / np.linalg.norm(means, axis=1, keepdims=True)
  features = means[labels] + rng.normal(size=(nodes, feature_dim))
  return Graph(name, edges, features.astype(np.float32), labels,
               tuple(f"block {c}" for c in range(classes)))


DROSOPHILA_FILES = ("{side}_adjacency.csv", "{side}_cell_labels.csv")


def graspologic_drosophila_dir() -> str | None:
  """The ``datasets/drosophila`` folder of an installed graspologic wheel
  (found without importing graspologic), or None."""
  spec = importlib.util.find_spec("graspologic")
  if spec is None or not spec.submodule_search_locations:
    return None
  return os.path.join(list(spec.submodule_search_locations)[0], "datasets",
                      "drosophila")


def drosophila(side: str, folder: str | None = None) -> Graph:
  """The larval Drosophila mushroom-body connectome, ``left`` or
  ``right`` hemisphere: graspologic's ``{side}_adjacency.csv`` (synapse
  counts, whitespace separated) and ``{side}_cell_labels.csv`` (one cell
  type per line)."""
  where = folder or graspologic_drosophila_dir()
  files = [os.path.join(where or "", f.format(side=side))
           for f in DROSOPHILA_FILES]
  if where is None or not all(os.path.isfile(f) for f in files):
    got = (f"{where!r} lacks {', '.join(os.path.basename(f) for f in files)}"
           if where else "graspologic is not installed")
    raise ConfigError(
        f"graph.graphs: drosophila_{side} needs the connectome files of the "
        f"graspologic wheel ({got}). Fix: `pip install --no-deps "
        "graspologic` (its files are read by path, nothing is imported), "
        "set graph.drosophila_dir to a folder holding "
        f"{side}_adjacency.csv and {side}_cell_labels.csv, or leave "
        f"drosophila_{side} out of graph.graphs.")
  adjacency = np.loadtxt(files[0], dtype=np.int64)
  cell_types = np.loadtxt(files[1], dtype=str).reshape(-1)
  n = adjacency.shape[0]
  if adjacency.shape != (n, n) or cell_types.shape != (n,):
    raise ConfigError(
        f"graph.drosophila_dir: {files[0]} is {adjacency.shape} but "
        f"{files[1]} has {cell_types.shape[0]} labels; expected an (N, N) "
        "matrix and N labels.")
  names = tuple(sorted(set(cell_types.tolist())))
  labels = np.array([names.index(c) for c in cell_types], np.int32)
  i, j = np.nonzero(adjacency + adjacency.T)
  return Graph(f"drosophila_{side}", simple_edges(np.stack([i, j], 1), n),
               np.eye(n, dtype=np.float32), labels, names)


PLANETOID_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")


def planetoid(name: str, folder: str) -> Graph:
  """Cora, Citeseer or PubMed from a folder of Planetoid files.

  Follows the loader of Kipf & Welling (gcn/utils.py), which UGS uses too:
  features and labels are ``allx``/``ally`` followed by ``tx``/``ty``,
  the test rows put at the node ids listed in ``test.index``; Citeseer's
  isolated test nodes missing from ``tx`` get zero features and no label
  (``Graph.labelled`` False: random splits leave them out).
  Public split: the ``len(y)`` first nodes train, the next 500 validate
  (fewer if the graph ends, never a test node), ``test.index`` tests.
  """
  import scipy.sparse as sp
  need = [f"ind.{name}.{p}" for p in PLANETOID_PARTS] + [
      f"ind.{name}.test.index"]
  missing = [f for f in need if not os.path.isfile(os.path.join(folder, f))]
  if missing:
    raise ConfigError(
        f"graph.dir={folder!r} lacks {', '.join(missing)}: {name} is read "
        "from the Planetoid files (ind.NAME.x, .y, .tx, .ty, .allx, .ally, "
        ".graph, .test.index, as distributed with Kipf & Welling's GCN and "
        "Planetoid) that cannot be downloaded here; copy them into one "
        "folder and pass it as --config.graph.dir=FOLDER.")
  parts = {}
  for p in PLANETOID_PARTS:
    with open(os.path.join(folder, f"ind.{name}.{p}"), "rb") as f:
      parts[p] = pickle.load(f, encoding="latin1")
  with open(os.path.join(folder, f"ind.{name}.test.index")) as f:
    test_idx = np.array([int(line) for line in f if line.strip()], np.int64)
  dense = lambda m: np.asarray(m.todense() if sp.issparse(m) else m,
                               np.float32)
  tx, ty = dense(parts["tx"]), np.asarray(parts["ty"], np.float32)
  lo, hi = int(test_idx.min()), int(test_idx.max())
  if hi - lo + 1 > len(test_idx):  # Citeseer: isolated test nodes
    full_x = np.zeros((hi - lo + 1, tx.shape[1]), np.float32)
    full_y = np.zeros((hi - lo + 1, ty.shape[1]), np.float32)
    full_x[np.sort(test_idx) - lo] = tx
    full_y[np.sort(test_idx) - lo] = ty
    tx, ty = full_x, full_y
  features = np.concatenate([dense(parts["allx"]), tx])
  onehot = np.concatenate([np.asarray(parts["ally"], np.float32), ty])
  order = np.sort(test_idx)
  features[test_idx] = features[order]
  onehot[test_idx] = onehot[order]
  n = features.shape[0]
  pairs = [(int(i), int(j)) for i, nbrs in dict(parts["graph"]).items()
           for j in nbrs if int(j) < n and int(i) < n]
  edges = simple_edges(np.array(pairs, np.int64).reshape(-1, 2), n)
  labels = onehot.argmax(1).astype(np.int32)
  num_train = len(parts["y"])
  val = np.arange(num_train, min(num_train + 500, n))
  public = (np.arange(num_train), np.setdiff1d(val, order),
            order.astype(np.int64))
  classes = tuple(f"class {c}" for c in range(onehot.shape[1]))
  labelled = onehot.sum(1) > 0
  return Graph(name, edges, features, labels, classes, public,
               None if labelled.all() else labelled)


# --- registry ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sources:
  """Where and how graphs are made (the ``graph`` config section's data
  keys): the Planetoid folder, the connectome folder, the SBM knobs."""
  planetoid_dir: str = ""
  drosophila_dir: str = ""
  sbm_nodes: int = 300
  sbm_classes: int = 3
  sbm_degree: float = 5.0
  sbm_homophily: tuple[float, float] = (0.8, 0.2)  # homophilous, hetero-
  sbm_feature_dim: int = 16
  sbm_feature_signal: float = 1.5
  seed: int = 0


def _planetoid(name: str) -> Callable[[Sources], Graph]:
  def make(src: Sources) -> Graph:
    if not src.planetoid_dir:
      raise ConfigError(
          f"graph.graphs: {name} is read from a local folder of Planetoid "
          "files (ind.NAME.x ... ind.NAME.test.index; no download exists "
          "here): set --config.graph.dir=FOLDER.")
    return planetoid(name, src.planetoid_dir)
  return make


def _sbm(which: int) -> Callable[[Sources], Graph]:
  def make(src: Sources) -> Graph:
    name = ("sbm_homophilous", "sbm_heterophilous")[which]
    return sbm(name, src.sbm_nodes, src.sbm_classes, src.sbm_degree,
               src.sbm_homophily[which], src.sbm_feature_dim,
               src.sbm_feature_signal, seed=src.seed * 1009 + which)
  return make


#: name -> builder(Sources).
GRAPHS: dict[str, Callable[[Sources], Graph]] = {
    "karate": lambda src: karate(),
    "sbm_homophilous": _sbm(0),
    "sbm_heterophilous": _sbm(1),
    "drosophila_left": lambda src: drosophila("left",
                                              src.drosophila_dir or None),
    "drosophila_right": lambda src: drosophila("right",
                                               src.drosophila_dir or None),
    "cora": _planetoid("cora"),
    "citeseer": _planetoid("citeseer"),
    "pubmed": _planetoid("pubmed"),
}


def check_graph_name(name: str, key: str = "graph.graphs") -> None:
  check_choice(key, name, GRAPHS, "graph")


def load_graph(name: str, sources: Sources = Sources()) -> Graph:
  """Graph ``name`` of :data:`GRAPHS`; a missing file is one
  :class:`ConfigError` that says how to get it."""
  check_graph_name(name)
  return GRAPHS[name](sources)


# --- splits and the Trainer's view -------------------------------------------

def split_nodes(labels: np.ndarray, train_fraction: float,
                val_fraction: float, seed: int,
                labelled: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A random stratified split of the (labelled) nodes (seeded): per
  class, ``round(train_fraction * n_c)`` nodes (at least one) train,
  ``round(val_fraction * n_c)`` (at least one) validate, the rest test.
  Sizes depend on the labels only, so every seed gives the same shapes."""
  rng = np.random.default_rng(seed)
  ok = np.ones(len(labels), bool) if labelled is None else labelled
  train, val, test = [], [], []
  for c in np.unique(labels[ok]):
    nodes = rng.permutation(np.flatnonzero((labels == c) & ok))
    n_tr = max(1, int(round(train_fraction * len(nodes))))
    n_va = max(1, int(round(val_fraction * len(nodes))))
    if n_tr + n_va >= len(nodes):
      raise ConfigError(
          f"graph.train_fraction={train_fraction} and graph.val_fraction="
          f"{val_fraction} leave no test node of a class with "
          f"{len(nodes)} nodes; lower them.")
    train.append(nodes[:n_tr])
    val.append(nodes[n_tr:n_tr + n_va])
    test.append(nodes[n_tr + n_va:])
  return tuple(np.sort(np.concatenate(s)).astype(np.int32)
               for s in (train, val, test))


@dataclasses.dataclass(frozen=True)
class NodeDataset:
  """One split of a graph as the Trainer reads it (the fields of
  :class:`~jaxticket.core.step.DataArrays`): examples are node indices,
  ``context`` the graph (``features`` (N, F) float32, ``senders`` and
  ``receivers`` (E,) int32, each undirected edge once). ``edges`` is the
  structure the model's edge mask covers (the graph's edges, possibly
  followed by candidate edges a mask may switch on)."""
  name: str
  graph: Graph
  edges: np.ndarray
  train_x: np.ndarray
  train_y: np.ndarray
  val_x: np.ndarray
  val_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  split: int
  task: str = "classification"
  augment: bool = False

  @property
  def num_classes(self) -> int:
    return self.graph.num_classes

  @property
  def input_shape(self) -> tuple[int, ...]:
    return ()

  @property
  def context(self) -> dict[str, np.ndarray]:
    return {"features": self.graph.features,
            "senders": self.edges[:, 0].astype(np.int32),
            "receivers": self.edges[:, 1].astype(np.int32)}

  @staticmethod
  def normalize(x: Any) -> Any:
    """Node indices pass unchanged (the model reads the features)."""
    return x


def node_dataset(graph: Graph, split: int, train_fraction: float,
                 val_fraction: float, public: bool = False,
                 extra_edges: np.ndarray | None = None) -> NodeDataset:
  """Split ``split`` (its seed) of ``graph``'s nodes, or the graph's public
  split; ``extra_edges`` (K, 2) are appended to the maskable structure
  (e.g. candidate edges for spectral addition, switched off by a mask)."""
  if public:
    if graph.public_split is None:
      raise ConfigError(f"graph.split=public: {graph.name} has no public "
                        "split (only the Planetoid graphs do); use "
                        "graph.split=random.")
    tr, va, te = (np.asarray(s, np.int32) for s in graph.public_split)
  else:
    tr, va, te = split_nodes(graph.labels, train_fraction, val_fraction,
                             seed=split, labelled=graph.labelled)
  edges = graph.edges if extra_edges is None or not len(extra_edges) else \
      np.concatenate([graph.edges, np.asarray(extra_edges, np.int32)])
  y = graph.labels
  return NodeDataset(graph.name, graph, edges.astype(np.int32), tr, y[tr],
                     va, y[va], te, y[te], split)


__all__ = ["Graph", "NodeDataset", "Sources", "GRAPHS", "load_graph",
           "check_graph_name", "karate", "sbm", "drosophila", "planetoid",
           "split_nodes", "node_dataset", "simple_edges", "dense_adjacency",
           "graspologic_drosophila_dir"]
