"""The ``graph`` config section: graph lottery tickets (UGS, Chen et al.
2021) and spectral edge pruning (Jamadandi, Rubio-Madrigal & Burkholz
2024) on offline graphs."""

from __future__ import annotations

import math

import ml_collections

from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.core.optim import OPTIMIZERS

PARTS = ("tickets", "spectral")
#: data.graphs.GRAPHS (kept here as text: settings import no data module).
GRAPH_NAMES = ("karate", "sbm_homophilous", "sbm_heterophilous",
               "drosophila_left", "drosophila_right", "cora", "citeseer",
               "pubmed")
MODELS = ("gcn", "sage")  # models.gnn.GNNS
SPLITS = ("random", "public")
#: Fixed-mask settings trained at every UGS round (the dense net always is).
METHODS = ("ugs", "ugs_reinit", "ugs_shuffle", "random", "random_edges",
           "spectral")


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.parts = PARTS
  c.graphs = ("sbm_homophilous", "sbm_heterophilous", "karate",
              "drosophila_left")
  c.models = ("gcn",)  # and/or sage (GraphSAGE, mean aggregator)
  c.hidden = 64  # hidden width (UGS uses 512 on Cora)
  c.depth = 2  # GNN layers (2 as UGS); the spectral part varies it
  # --- data ---------------------------------------------------------------
  c.splits = 2  # seeded random node splits per graph (split i: seed i)
  c.seeds = 2  # initializations per split, on the replica axis
  c.split = "random"  # or public (the Planetoid graphs' standard split)
  c.train_fraction = 0.2  # per class, of the labelled nodes
  c.val_fraction = 0.2  # per class; the rest is the test set
  c.dir = ""  # folder of the Planetoid files (cora, citeseer, pubmed)
  c.drosophila_dir = ""  # "" = the installed graspologic wheel's files
  c.sbm = ml_collections.ConfigDict()
  c.sbm.nodes = 300
  c.sbm.classes = 3
  c.sbm.degree = 5.0  # expected degree
  c.sbm.homophilous = 0.8  # expected edge homophily of sbm_homophilous
  c.sbm.heterophilous = 0.2  # ... and of sbm_heterophilous
  c.sbm.feature_dim = 16
  c.sbm.feature_signal = 1.5  # norm of the class means (noise std 1)
  c.sbm.seed = 0
  # --- training (full batch: one step = one epoch) -------------------------
  c.optimizer = "adam"  # UGS: Adam, coupled L2 (torch weight_decay)
  c.lr = 0.01
  c.weight_decay = 5e-4
  c.steps = 200  # epochs (UGS: 200 per round and for the retraining)
  c.eval_every = 5  # the test accuracy reported is at the best validation
  # --- UGS tickets -----------------------------------------------------------
  c.rounds = 5  # prune-rewind rounds
  c.edge_fraction = 0.05  # of the remaining edges pruned per round
  c.weight_fraction = 0.2  # of the remaining weights pruned per round
  c.l1_edges = 1e-2  # UGS s1: L1 on the (symmetric) adjacency mask
  c.l1_weights = 1e-2  # UGS s2: L1 on the weight masks
  c.methods = METHODS
  # --- spectral pruning ------------------------------------------------------
  c.spectral = ml_collections.ConfigDict()
  # Edges deleted / added per eigenpair recomputation; 0 = 0.5% of the
  # graph's edges (at least 1).
  c.spectral.update_every = 0
  # Fractions of the graph's edges deleted (greedy, random) or added
  # (greedy) for the accuracy and over-smoothing programs.
  c.spectral.delete_fractions = (0.1, 0.2, 0.4)
  c.spectral.add_fractions = (0.1, 0.2)
  c.spectral.depths = (2, 4, 8)  # GNN depths for the Dirichlet energy
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """The ``:tiny`` size (called by ``config.shrink``)."""
  g = cfg.graph
  g.graphs = ("karate",)
  g.hidden = 16
  g.splits = 1
  g.seeds = 2
  g.steps = 30
  g.eval_every = 10
  g.rounds = 2
  g.sbm.nodes = 60
  g.spectral.delete_fractions = (0.2,)
  g.spectral.add_fractions = (0.1,)
  g.spectral.depths = (2, 3)


def _number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and \
      math.isfinite(x)


def _words(key: str, values, allowed, what: str) -> None:
  if not len(values):
    raise ConfigError(f"{key}=() is empty: give one or more of "
                      f"{', '.join(allowed)}.")
  for v in values:
    check_choice(key, v, allowed, what)
  if len(set(values)) != len(values):
    raise ConfigError(f"{key}={tuple(values)!r} repeats a value: give each "
                      "once.")


def _fractions(key: str, values, what: str) -> None:
  for f in values:
    check_range(key, _number(f) and 0 < f < 1, f,
                f"each a fraction of the graph's edges {what}, in (0, 1)")
  if len(set(values)) != len(values):
    raise ConfigError(f"{key}={tuple(values)!r} repeats a value: give each "
                      "once.")


def validate(cfg: ml_collections.ConfigDict) -> None:
  check_range("task.loss", cfg.task.loss == "ce", cfg.task.loss,
              "`graph` trains with cross-entropy only; use task.loss=ce")
  g = cfg.graph
  _words("graph.parts", g.parts, PARTS, "part")
  _words("graph.graphs", g.graphs, GRAPH_NAMES, "graph")
  _words("graph.models", g.models, MODELS, "graph model")
  check_range("graph.hidden", isinstance(g.hidden, int) and g.hidden >= 1,
              g.hidden, "the hidden width, an integer >= 1")
  check_range("graph.depth", isinstance(g.depth, int) and g.depth >= 2,
              g.depth, "GNN layers, an integer >= 2 (one hidden layer at "
              "least)")
  check_range("graph.splits", g.splits >= 1, g.splits, "must be >= 1")
  check_range("graph.seeds", g.seeds >= 1, g.seeds, "must be >= 1")
  check_choice("graph.split", g.split, SPLITS, "split")
  check_range("graph.train_fraction", _number(g.train_fraction) and
              0 < g.train_fraction < 1, g.train_fraction, "must be in (0, 1)")
  check_range("graph.val_fraction", _number(g.val_fraction) and
              0 < g.val_fraction < 1 and
              g.train_fraction + g.val_fraction < 1, g.val_fraction,
              "must be in (0, 1) with graph.train_fraction + "
              "graph.val_fraction < 1 (the rest is the test set)")
  s = g.sbm
  check_range("graph.sbm.nodes", s.nodes >= 2 * s.classes, s.nodes,
              f"at least 2 per class (graph.sbm.classes={s.classes})")
  check_range("graph.sbm.classes", s.classes >= 2, s.classes, "must be >= 2")
  check_range("graph.sbm.degree", _number(s.degree) and
              0 < s.degree < s.nodes, s.degree,
              f"the expected degree, in (0, graph.sbm.nodes={s.nodes})")
  for key in ("homophilous", "heterophilous"):
    h = s[key]
    check_range(f"graph.sbm.{key}", _number(h) and 0 <= h <= 1, h,
                "an expected edge homophily in [0, 1]")
  check_range("graph.sbm.feature_dim", s.feature_dim >= 1, s.feature_dim,
              "must be >= 1")
  check_range("graph.sbm.feature_signal", _number(s.feature_signal) and
              s.feature_signal >= 0, s.feature_signal, "must be >= 0")
  check_choice("graph.optimizer", g.optimizer, OPTIMIZERS, "optimizer")
  check_range("graph.lr", _number(g.lr) and g.lr > 0, g.lr,
              "must be > 0 and finite")
  check_range("graph.weight_decay", _number(g.weight_decay) and
              g.weight_decay >= 0, g.weight_decay, "must be >= 0")
  check_range("graph.steps", g.steps >= 1, g.steps, "must be >= 1")
  check_range("graph.eval_every", 1 <= g.eval_every <= g.steps,
              g.eval_every, f"must be in [1, graph.steps={g.steps}]")
  check_range("graph.rounds", isinstance(g.rounds, int) and g.rounds >= 0,
              g.rounds, "prune-rewind rounds, an integer >= 0 (0: dense "
              "only)")
  check_range("graph.edge_fraction", _number(g.edge_fraction) and
              0 <= g.edge_fraction < 1, g.edge_fraction,
              "a fraction of the remaining edges pruned per round, in "
              "[0, 1) (UGS: 0.05)")
  check_range("graph.weight_fraction", _number(g.weight_fraction) and
              0 <= g.weight_fraction < 1, g.weight_fraction,
              "a fraction of the remaining weights pruned per round, in "
              "[0, 1) (UGS: 0.2)")
  for key in ("l1_edges", "l1_weights"):
    check_range(f"graph.{key}", _number(g[key]) and g[key] >= 0, g[key],
                "must be >= 0")
  _words("graph.methods", g.methods, METHODS, "method")
  sp = g.spectral
  check_range("graph.spectral.update_every", sp.update_every >= 0,
              sp.update_every, "edges per eigenpair recomputation, >= 0 "
              "(0 = 0.5% of the edges)")
  _fractions("graph.spectral.delete_fractions", sp.delete_fractions,
             "deleted")
  _fractions("graph.spectral.add_fractions", sp.add_fractions, "added")
  if not len(sp.depths):
    raise ConfigError("graph.spectral.depths=() is empty: give GNN depths, "
                      "e.g. 2,4,8.")
  for d in sp.depths:
    check_range("graph.spectral.depths", isinstance(d, int) and d >= 2, d,
                "each a GNN depth, an integer >= 2")
  if len(set(sp.depths)) != len(sp.depths):
    raise ConfigError(f"graph.spectral.depths={tuple(sp.depths)!r} repeats "
                      "a value: give each once.")
