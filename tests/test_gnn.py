"""GNNs with a maskable adjacency: the normalized adjacency and the forward
pass against dense NumPy, the all-edges-masked reduction to the self-loop
term, the symmetric tie of both edge directions (gradient = sum of the
two directed gradients), and per-replica edge masks under vmap equal to
separate runs through the platform's Trainer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks, optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.data import graphs
from jaxticket.models import gnn


def numpy_normalized(n, edges, w):
  a = graphs.dense_adjacency(n, edges, w) + np.eye(n)
  d = a.sum(1)
  return a / np.sqrt(d[:, None] * d[None, :])


@pytest.fixture(scope="module")
def karate():
  g = graphs.load_graph("karate")
  return g, graphs.node_dataset(g, 0, 0.3, 0.2)


def ctx_of(d):
  return jax.tree.map(jnp.asarray, d.context)


def test_normalized_adjacency_equals_dense_numpy(karate):
  g, d = karate
  w = np.random.default_rng(0).random(g.num_edges)
  got = gnn.normalized_adjacency(jnp.asarray(g.edges[:, 0]),
                                 jnp.asarray(g.edges[:, 1]),
                                 jnp.asarray(w, jnp.float32), g.num_nodes)
  np.testing.assert_allclose(got, numpy_normalized(g.num_nodes, g.edges, w),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(got, got.T, atol=1e-7)


def test_gcn_forward_equals_dense_numpy(karate):
  g, d = karate
  model = gnn.GCN(num_classes=2, hidden=8, depth=3)
  ctx = ctx_of(d)
  nodes = jnp.arange(g.num_nodes)
  params = model.init(jax.random.key(0), nodes, context=ctx)["params"]
  w = np.random.default_rng(1).random(g.num_edges).astype(np.float32)
  params = {**params, "edges": jnp.asarray(w)}
  got = model.apply({"params": params}, nodes, context=ctx)
  a = numpy_normalized(g.num_nodes, g.edges, w)
  k = lambda name: np.asarray(params[name]["dense"]["kernel"], np.float64)
  h = np.maximum(a @ g.features @ k("GCNConv_0"), 0)
  h = np.maximum(a @ h @ k("GCNConv_1"), 0)
  np.testing.assert_allclose(got, a @ h @ k("head"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_all_edges_masked_leaves_the_self_term(karate, name):
  g, d = karate
  model = gnn.build_gnn(name, 2, hidden=8, depth=2)
  ctx = ctx_of(d)
  nodes = jnp.arange(g.num_nodes)
  params = model.init(jax.random.key(0), nodes, context=ctx)["params"]
  none = masks.ones(params, gnn.EDGES)
  none = jax.tree.map(lambda m: None if m is None else jnp.zeros_like(m),
                      none, is_leaf=lambda x: x is None)
  got = model.apply({"params": masks.apply(params, none)}, nodes,
                    context=ctx)
  x = g.features
  if name == "gcn":  # A_hat = I: H W per layer
    want = np.maximum(x @ params["GCNConv_0"]["dense"]["kernel"], 0) @ \
        params["head"]["dense"]["kernel"]
  else:  # W_self h, plus the neighbour term's bias (its mean is 0)
    layer = lambda p, h: h @ p["self"]["kernel"] + p["neighbors"]["bias"]
    want = layer(params["head"], np.maximum(layer(params["SAGEConv_0"], x),
                                            0))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # ... and with every edge kept the graph does matter.
  full = model.apply({"params": params}, nodes, context=ctx)
  assert np.abs(np.asarray(full) - np.asarray(want)).max() > 1e-3


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_dense_and_sparse_propagation_agree(karate, name):
  g, d = karate
  ctx = ctx_of(d)
  nodes = jnp.arange(g.num_nodes)
  dense = gnn.build_gnn(name, 2, hidden=8, depth=3, dense_nodes=10_000)
  sparse = gnn.build_gnn(name, 2, hidden=8, depth=3, dense_nodes=0)
  params = dense.init(jax.random.key(0), nodes, context=ctx)["params"]
  w = jnp.asarray(np.random.default_rng(2).random(g.num_edges), jnp.float32)

  def f(model, w):
    return jnp.sum(jnp.sin(model.apply({"params": {**params, "edges": w}},
                                       nodes, context=ctx)))

  np.testing.assert_allclose(f(dense, w), f(sparse, w), rtol=1e-5)
  np.testing.assert_allclose(jax.grad(lambda w: f(dense, w))(w),
                             jax.grad(lambda w: f(sparse, w))(w),
                             rtol=1e-4, atol=1e-6)


def test_edge_weight_gradient_is_the_sum_of_both_directions(karate):
  """One weight per undirected edge = a dense adjacency mask tied
  symmetric: its gradient is dL/dM_ij + dL/dM_ji of the dense model."""
  g, d = karate
  model = gnn.GCN(num_classes=2, hidden=8, depth=2)
  ctx = ctx_of(d)
  nodes = jnp.asarray(d.train_x)
  y = jnp.asarray(d.train_y)
  params = model.init(jax.random.key(0), nodes, context=ctx)["params"]
  ce = lambda logits: tasks.get("classification").per_example(logits, y)[
      0].mean()

  def loss_edges(w):
    return ce(model.apply({"params": {**params, "edges": w}}, nodes,
                          context=ctx))

  a0 = jnp.asarray(graphs.dense_adjacency(g.num_nodes, g.edges),
                   jnp.float32)
  k0 = params["GCNConv_0"]["dense"]["kernel"]
  k1 = params["head"]["dense"]["kernel"]

  def loss_dense(m):  # UGS's formulation: mask the dense adjacency
    a = a0 * m + jnp.eye(g.num_nodes)
    dinv = jax.lax.rsqrt(a.sum(1))
    a = a * dinv[:, None] * dinv[None, :]
    h = jax.nn.relu(a @ (ctx["features"] @ k0))
    return ce((a @ (h @ k1))[nodes])

  w = jnp.ones(g.num_edges)
  ge = jax.grad(loss_edges)(w)
  gm = jax.grad(loss_dense)(jnp.ones_like(a0))
  i, j = g.edges[:, 0], g.edges[:, 1]
  np.testing.assert_allclose(ge, gm[i, j] + gm[j, i], rtol=1e-4, atol=1e-7)
  assert float(jnp.abs(gm - gm.T).max()) > 1e-6  # directions do differ
  np.testing.assert_allclose(loss_edges(w), loss_dense(jnp.ones_like(a0)),
                             rtol=1e-5)


def graph_trainer(d, num_classes, steps=10):
  model = gnn.GCN(num_classes=num_classes, hidden=8, depth=2)
  recipe = optim.Recipe(steps=steps, batch_size=len(d.train_y),
                        optimizer="adam")
  prog = step_lib.Program(model, tasks.get("classification"), recipe,
                          d.normalize, Parametrization(r"(^|/)kernel$"),
                          prunable=gnn.GRAPH_PRUNABLE)
  return loop_lib.Trainer(prog, d, shard=False)


def test_per_replica_edge_masks_under_vmap_equal_separate_runs(karate):
  g, d = karate
  tr = graph_trainer(d, 2)
  seeds = [0, 1, 2]
  state = tr.init(loop_lib.replica_keys(seeds))
  rng = np.random.default_rng(0)
  edge_masks = rng.random((3, g.num_edges)) < np.array([[1.0], [0.5],
                                                        [0.0]])
  mask = state.mask
  mask = {**mask, "edges": jnp.asarray(edge_masks)}
  state = tr.restart(state.replace(mask=mask))
  hp = optim.stack_hparams([0.01] * 3, [5e-4] * 3)
  out, _ = tr.run(state, hp, 10)
  assert tr.traces["run"] == 1
  one = graph_trainer(d, 2)
  for r, seed in enumerate(seeds):
    s1 = one.init(loop_lib.replica_keys([seed]))
    s1 = one.restart(s1.replace(mask={**s1.mask, "edges": jnp.asarray(
        edge_masks[r:r + 1])}))
    s1, _ = one.run(s1, optim.stack_hparams([0.01], [5e-4]), 10)
    for a, b in zip(jax.tree.leaves(out.params), jax.tree.leaves(s1.params)):
      np.testing.assert_allclose(a[r], b[0], rtol=2e-5, atol=1e-6)
    # Pruned edges stay exactly zero; the weight kept its value 1.
    np.testing.assert_array_equal(np.asarray(out.params["edges"][r]),
                                  edge_masks[r].astype(np.float32))
  # The masks matter: replicas of the same seed with other edges differ.
  same = tr.init(loop_lib.replica_keys([0, 0, 0]))
  same = tr.restart(same.replace(mask=mask))
  same, _ = tr.run(same, hp, 10)
  k = np.asarray(same.params["head"]["dense"]["kernel"])
  assert np.abs(k[0] - k[1]).max() > 1e-4 and np.abs(k[1] - k[2]).max() > 1e-4


def test_training_learns_and_compiles_once(karate):
  g, d = karate
  tr = graph_trainer(d, 2, steps=60)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  hp = optim.stack_hparams([0.05] * 2, [0.0] * 2)
  state = tr.train(state, hp, 60, 20)
  ev = tr.evaluate(state)
  assert float(np.mean(ev.val_accuracy)) > 0.7
  assert tr.traces["run"] == 1 and tr.traces["evaluate"] == 1
  assert tr.traces["init"] == 1
