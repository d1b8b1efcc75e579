"""Graph node-classification sets through ``data.load`` and the weight
methods (imp, pai, dst) on a GCN (issue 20): the documented shapes and
split, the GCN's logits against a NumPy GCN, frozen and unpruned edges,
SNIP on the GCN against its formula, bad configs, and (slow) ``jaxticket
imp`` on a graph set and a benchmark ranking an image and a graph set."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxticket import cli, config, data as data_lib
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import ConfigError
from jaxticket.data import graphs
from jaxticket.experiments import common
from jaxticket.experiments.benchmark import benchmark, ranking
from jaxticket.experiments.pai import methods as pai_methods
from jaxticket.pruning import scorers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBM = os.path.join(ROOT, "configs", "sbm_gcn.py")
BENCH = os.path.join(ROOT, "configs", "benchmark.py")


def test_graph_set_through_data_load_has_the_documented_shapes():
  d = data_lib.load("karate")
  g = graphs.karate()
  assert data_lib.is_graph("karate") and not data_lib.is_graph("digits")
  # examples are node indices (int32, one axis), the graph is the context
  for x, y in ((d.train_x, d.train_y), (d.val_x, d.val_y),
               (d.test_x, d.test_y)):
    assert x.ndim == 1 and x.dtype == np.int32
    np.testing.assert_array_equal(y, g.labels[x])
  nodes = np.concatenate([d.train_x, d.val_x, d.test_x])
  assert sorted(nodes.tolist()) == list(range(g.num_nodes))  # a partition
  assert d.input_shape == () and d.num_classes == 2 and not d.augment
  assert d.context["features"].shape == (34, 34)
  assert d.context["senders"].shape == d.context["receivers"].shape == (78,)
  assert d.normalize(d.train_x) is d.train_x  # indices pass unchanged
  # the same nodes as split 0 of `jaxticket graph` (graph.* fractions)
  nd = graphs.node_dataset(g, 0, 0.2, 0.2)
  np.testing.assert_array_equal(d.train_x, nd.train_x)
  np.testing.assert_array_equal(d.test_x, nd.test_x)
  # the graph section's keys reach the generator and the split
  cfg = config.load(SBM + ":tiny")
  s = common.load_data(cfg)
  assert s.context["features"].shape == (cfg.graph.sbm.nodes,
                                         cfg.graph.sbm.feature_dim)
  assert len(s.train_y) == cfg.train.batch_size == 12  # 20% of 60 nodes


def numpy_gcn(params, features, edges, nodes):
  """Kipf & Welling's Eq. 2 with dense matrices: A_hat relu(A_hat X W0) W1,
  A_hat = D~^-1/2 (A + I) D~^-1/2."""
  n = features.shape[0]
  a = graphs.dense_adjacency(n, edges) + np.eye(n)
  d = a.sum(1) ** -0.5
  a_hat = d[:, None] * a * d[None, :]
  w0 = np.asarray(params["GCNConv_0"]["dense"]["kernel"], np.float64)
  w1 = np.asarray(params["head"]["dense"]["kernel"], np.float64)
  h = np.maximum(a_hat @ features @ w0, 0)
  return (a_hat @ h @ w1)[nodes]


def test_setup_builds_a_gcn_with_frozen_unpruned_edges():
  cfg = config.load(SBM + ":tiny")
  cfg.seeds = 2
  s = common.setup(cfg)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  assert state.mask["edges"] is None  # masks.prunable: kernels only
  assert state.mask["head"]["dense"]["kernel"] is not None
  p0 = jax.device_get(loop_lib.tree_index(state.params, 0))
  ctx = s.data.context
  got = s.model.apply({"params": p0}, s.data.test_x, context=ctx)
  want = numpy_gcn(p0, ctx["features"].astype(np.float64),
                   np.stack([ctx["senders"], ctx["receivers"]], 1),
                   s.data.test_x)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
  head0 = np.asarray(state.params["head"]["dense"]["kernel"])  # (donated)
  trained = s.trainer.train(state, s.hparams, 5, 5)
  np.testing.assert_array_equal(np.asarray(trained.params["edges"]), 1.0)
  moved = np.abs(np.asarray(trained.params["head"]["dense"]["kernel"]) -
                 head0).max()
  assert moved > 0  # kernels train, edge weights do not


def test_snip_on_the_gcn_reads_the_graph_and_equals_its_formula():
  cfg = config.load(SBM + ":tiny")
  cfg.seeds = 1
  s = common.setup(cfg)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  params = jax.device_get(loop_lib.tree_index(state.params, 0))
  mask = jax.device_get(loop_lib.tree_index(state.mask, 0))
  prog, ctx = s.trainer.prog, pai_methods.data_context(s.data)
  x, y = jnp.asarray(s.data.train_x), jnp.asarray(s.data.train_y)
  sc = scorers.ScoreContext(
      params, mask, None, None, ((x, y),),
      pai_methods.forward_fn(prog, ctx), pai_methods.output_loss_fn(prog),
      {}, ())
  got = scorers.snip.sensitivity(sc)
  feats = jnp.asarray(s.data.context["features"])
  edges = np.stack([s.data.context["senders"], s.data.context["receivers"]],
                   1)
  n = feats.shape[0]
  a = graphs.dense_adjacency(n, edges) + np.eye(n)
  dd = a.sum(1) ** -0.5
  a_hat = jnp.asarray(dd[:, None] * a * dd[None, :], jnp.float32)

  def loss(w0, w1):
    out = (a_hat @ jax.nn.relu(a_hat @ feats @ w0) @ w1)[x]
    return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

  w0 = params["GCNConv_0"]["dense"]["kernel"]
  w1 = params["head"]["dense"]["kernel"]
  g0, g1 = jax.grad(loss, (0, 1))(w0, w1)
  np.testing.assert_allclose(got["GCNConv_0"]["dense"]["kernel"],
                             np.abs(g0 * w0), rtol=1e-3, atol=1e-7)
  np.testing.assert_allclose(got["head"]["dense"]["kernel"],
                             np.abs(g1 * w1), rtol=1e-3, atol=1e-7)
  assert got["edges"] is None  # never scored: not prunable
  # without the graph the model cannot run (the context is what is tested)
  with pytest.raises(ValueError, match="needs a graph"):
    pai_methods.forward_fn(prog)(params, {}, x, False)


@pytest.mark.parametrize("overrides,key", [
    (["--config.data.name=karate"], "model.name"),
    (["--config.model.name=gcn"], "data.name"),
    (["--config.data.name=karate", "--config.model.name=gcn",
      "--config.masks.prunable=(^|/)(kernel|edges)$"], "masks.prunable"),
])
def test_graph_data_and_model_must_match(tmp_path, capsys, overrides, key):
  code = cli.main(["imp", "--config", os.path.join(ROOT, "configs",
                                                    "mnist1d_lenet.py:tiny"),
                   "--workdir", str(tmp_path / "w"), *overrides])
  err = capsys.readouterr().err
  assert code == 2 and key in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1, err


def test_benchmark_config_of_a_graph_set():
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.datasets = ("digits", "karate")
  benchmark.validate(cfg)
  c = benchmark.imp_config(cfg, "karate", 0.1)
  assert (c.model.name, c.masks.prunable) == ("gcn", r"(^|/)kernel$")
  assert c.train.batch_size == len(data_lib.load("karate").train_y)  # full
  i = benchmark.imp_config(cfg, "digits", 0.1)
  assert (i.model.name, i.train.batch_size) == (cfg.model.name,
                                                cfg.train.batch_size)
  assert benchmark.model_label(cfg) == f"{cfg.model.name} (graphs: gcn)"
  cfg.benchmark.methods = ("imp", "synflow")
  with pytest.raises(ConfigError, match="synflow"):
    benchmark.validate(cfg)


@pytest.mark.slow
def test_tiny_imp_on_a_graph_set(tmp_path):
  code = cli.main(["imp", "--config", SBM + ":tiny", "--workdir",
                   str(tmp_path / "w"), "--no-progress"])
  assert code == 0
  s = json.load(open(tmp_path / "w" / "summary.json"))
  dens = [r["density"] for r in s["levels"]]
  assert dens[0] == 1.0 and all(a > b for a, b in zip(dens, dens[1:]))
  assert all(0 <= r["test_accuracy"]["mean"] <= 1 for r in s["levels"])


@pytest.mark.slow
def test_tiny_benchmark_ranks_an_image_and_a_graph_set(tmp_path):
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.datasets = ("digits", "karate")
  s = benchmark.run(cfg, str(tmp_path / "b"), progress=False)
  assert s.datasets == ["digits", "karate"]
  assert [b["dataset"] for b in s.dataset_ranks] == ["digits", "karate"]
  assert len(s.cells) == len(s.methods) * 2
  for c in s.cells:
    assert all(0 <= v <= 1 for v in c["test"])
  for block in s.dataset_ranks:
    acc = [r["accuracy"] for r in block["rows"]]
    assert [r["rank"] for r in block["rows"]] == list(ranking.ranks(acc))
  imp = json.load(open(tmp_path / "b" / "cells" / "imp__karate" /
                       "config.json"))
  assert imp["model"]["name"] == "gcn"
  assert s.model == f"{cfg.model.name} (graphs: gcn)"
