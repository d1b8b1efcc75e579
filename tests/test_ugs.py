"""UGS pieces reduced to something known: the L1 penalty's step equals the
subgradient s * sign(m) (closed form), soft masks of ones are the plain
model, the pruning step against a NumPy ranking (edges and weights apart,
weights global, pruned stay pruned), random pruning's exact counts, the
controls, and a whole round's mask = the pruning of the best-validation
evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config as config_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.workdir import Workdir
from jaxticket.data import graphs
from jaxticket.experiments.graph import programs, tickets
from jaxticket.models import gnn, soft_mask
from jaxticket.pruning import ugs


@pytest.fixture(scope="module")
def karate():
  g = graphs.load_graph("karate")
  return g, graphs.node_dataset(g, 0, 0.3, 0.2)


def test_soft_masks_of_ones_are_the_plain_model(karate):
  g, d = karate
  ctx = jax.tree.map(jnp.asarray, d.context)
  nodes = jnp.arange(g.num_nodes)
  body = gnn.GCN(num_classes=2, hidden=8)
  wrapped = soft_mask.SoftMask(body, noise=0.0)
  v = wrapped.init(jax.random.key(3), nodes, context=ctx)
  plain = body.init(jax.random.key(3), nodes, context=ctx)
  # The body's weights are exactly the plain model's for the same key.
  for a, b in zip(jax.tree.leaves(soft_mask.body_tree(v["params"])),
                  jax.tree.leaves(plain["params"])):
    np.testing.assert_array_equal(a, b)
  assert np.all(np.asarray(v["params"]["head"]["dense"]["kernel_mask"]) == 1)
  np.testing.assert_allclose(wrapped.apply(v, nodes, context=ctx),
                             body.apply(plain, nodes, context=ctx),
                             rtol=1e-6)
  # A mask multiplies its kernel.
  p = v["params"]
  m = jnp.zeros_like(p["head"]["dense"]["kernel_mask"]).at[0].set(2.0)
  p2 = {**p, "head": {"dense": {**p["head"]["dense"], "kernel_mask": m}}}
  eff = soft_mask.effective_params(p2)
  np.testing.assert_allclose(eff["head"]["dense"]["kernel"],
                             p["head"]["dense"]["kernel"] * m)
  assert "kernel_mask" not in eff["head"]["dense"]


def test_l1_penalty_step_is_the_subgradient(karate):
  """One plain SGD step (no momentum, no decay): with the penalty the
  masks move by exactly lr * s * sign(m) more than without."""
  g, d = karate
  net = soft_mask.SoftMask(gnn.GCN(num_classes=2, hidden=8), noise=0.0)
  s_edges, s_weights, lr = 0.3, 0.7, 0.1
  recipe = optim.Recipe(steps=1, batch_size=len(d.train_y), optimizer="sgd",
                        momentum=0.0)

  def one_step(penalty):
    prog = step_lib.Program(net, tasks.get("classification"), recipe,
                            d.normalize, Parametrization("", penalty=penalty),
                            prunable=gnn.GRAPH_PRUNABLE)
    tr = loop_lib.Trainer(prog, d, shard=False)
    st = tr.init(loop_lib.replica_keys([0]))
    # Some negative mask entries: the subgradient's sign must follow.
    km = st.params["head"]["dense"]["kernel_mask"]
    km = km.at[:, 0].set(-0.5)
    params = {**st.params, "head": {"dense": {**st.params["head"]["dense"],
                                              "kernel_mask": km}}}
    st = tr.restart(st.replace(params=params))
    out, _ = tr.run(st, optim.stack_hparams([lr], [0.0]), 1)
    return params, out.params

  penalty = soft_mask.l1_penalty({gnn.EDGES: s_edges,
                                  r"(^|/)kernel_mask$": s_weights})
  before, with_pen = one_step(penalty)
  _, without = one_step(None)
  np.testing.assert_allclose(
      without["edges"] - with_pen["edges"],
      lr * s_edges * np.sign(before["edges"]), rtol=1e-4, atol=1e-7)
  for layer in ("GCNConv_0", "head"):
    m = before[layer]["dense"]["kernel_mask"]
    np.testing.assert_allclose(
        without[layer]["dense"]["kernel_mask"] -
        with_pen[layer]["dense"]["kernel_mask"],
        lr * s_weights * np.sign(m), rtol=1e-4, atol=1e-7)
  # Kernels carry no penalty: identical steps.
  np.testing.assert_allclose(with_pen["head"]["dense"]["kernel"],
                             without["head"]["dense"]["kernel"], rtol=1e-6)


def fake_soft(rng, alive_edges, shapes):
  params = {"edges": rng.normal(size=len(alive_edges)).astype(np.float32)}
  mask = {"edges": alive_edges}
  for i, s in enumerate(shapes):
    params[f"l{i}"] = {"kernel": rng.normal(size=s).astype(np.float32),
                       "kernel_mask": rng.normal(size=s).astype(np.float32)}
    mask[f"l{i}"] = {"kernel": rng.random(s) > 0.2, "kernel_mask": None}
  return params, mask


def test_ugs_prune_against_numpy_ranking():
  rng = np.random.default_rng(0)
  alive = rng.random(50) > 0.3
  params, mask = fake_soft(rng, alive, [(6, 5), (5, 3)])
  new = ugs.prune(jax.tree.map(jnp.asarray, params),
                  jax.tree.map(jnp.asarray, mask), 0.1, 0.25)
  # Edges: the round(0.1 * alive) smallest |edges| of the alive ones go.
  score = np.abs(params["edges"])
  idx = np.flatnonzero(alive)
  k = int(np.floor(0.1 * len(idx) + 0.5))
  gone = idx[np.argsort(score[idx], kind="stable")[:k]]
  want = alive.copy()
  want[gone] = False
  np.testing.assert_array_equal(np.asarray(new["edges"]), want)
  # Weights: one ranking of |kernel_mask| over both layers (not |kernel|).
  s = np.concatenate([np.abs(params[f"l{i}"]["kernel_mask"]).ravel()
                      for i in range(2)])
  a = np.concatenate([mask[f"l{i}"]["kernel"].ravel() for i in range(2)])
  idx = np.flatnonzero(a)
  k = int(np.floor(0.25 * len(idx) + 0.5))
  keep = a.copy()
  keep[idx[np.argsort(s[idx], kind="stable")[:k]]] = False
  got = np.concatenate([np.asarray(new[f"l{i}"]["kernel"]).ravel()
                        for i in range(2)])
  np.testing.assert_array_equal(got, keep)
  assert new["l0"]["kernel_mask"] is None


def test_random_pruning_counts_per_layer_and_edges():
  rng = np.random.default_rng(1)
  mask = {"edges": np.ones(40, bool),
          "a": {"kernel": np.ones((10, 10), bool)},
          "b": {"kernel": np.ones((10, 2), bool), "bias": None}}
  m = jax.tree.map(jnp.asarray, mask)
  out = ugs.prune_random(jax.random.key(0), m, 0.05, 0.2)
  assert int(out["edges"].sum()) == 38
  assert int(out["a"]["kernel"].sum()) == 80
  assert int(out["b"]["kernel"].sum()) == 16
  again = ugs.prune_random(jax.random.key(0), out, 0.05, 0.2)
  assert not np.any(np.asarray(again["edges"]) & ~np.asarray(out["edges"]))
  assert int(again["edges"].sum()) == 36  # round(0.05 * 38) = 2


def test_controls_keep_counts_and_edges():
  rng = np.random.default_rng(2)
  mask = {"edges": rng.random((2, 30)) > 0.5,
          "l": {"dense": {"kernel": rng.random((2, 6, 4)) > 0.5}}}
  out = tickets.shuffled(mask, [0, 1], 1)
  np.testing.assert_array_equal(out["edges"], mask["edges"])
  k, k0 = out["l"]["dense"]["kernel"], mask["l"]["dense"]["kernel"]
  np.testing.assert_array_equal(k.sum((1, 2)), k0.sum((1, 2)))
  assert not np.array_equal(k, k0)


def test_predicted_deletions_match_the_allocator():
  e = jnp.ones(1000, bool)
  got = []
  for r in range(6):
    e = ugs.prune_random(jax.random.key(r), {"edges": e}, 0.05, 0.2)["edges"]
    got.append(1000 - int(e.sum()))
  assert got == tickets.predicted_deleted(1000, 0.05, 6)


def test_a_ugs_round_prunes_at_the_best_validation(karate, tmp_path):
  """The round's mask = ugs.prune of the soft masks at the evaluation with
  the best validation accuracy (recomputed from a recorded run)."""
  g, d = karate
  cfg = config_lib.default_config()
  cfg.graph.hidden, cfg.graph.steps, cfg.graph.eval_every = 8, 12, 3
  cfg.graph.lr = 0.05
  tr = programs.search_trainer(cfg, d, "gcn")
  seeds = [0, 1]
  base = programs.dense_mask(programs.fixed_trainer(cfg, d, "gcn", 2), 2)
  wd = Workdir(str(tmp_path / "w"), "graph")
  recorded = []
  orig = tr.evaluate

  def spy(state):  # record every evaluated state (copied: it is donated)
    recorded.append((programs.to_host(state.params),
                     programs.to_host(state.mask)))
    return orig(state)

  tr.evaluate = spy
  labels = [{"seed": s} for s in seeds]
  new, row = tickets.ugs_round(cfg, wd, tr, seeds, base, "r1", labels,
                               progress=False)
  vals = np.array([[m["val_accuracy"] for m in rows] for rows in
                   _rows_by_step(wd, "r1")])  # (evals, R)
  for r in range(2):
    first_best = int(np.argmax(vals[:, r]))  # first evaluation at the max
    params, mask = recorded[first_best]
    want = ugs.prune(jax.tree.map(jnp.asarray, programs.replica(params, r)),
                     programs.fill(programs.replica(mask, r),
                                   programs.replica(mask, r)), 0.05, 0.2)
    want = soft_mask.body_tree(programs.to_host(want))
    for a, b in zip(jax.tree.leaves(want),
                    jax.tree.leaves(programs.replica(new, r))):
      np.testing.assert_array_equal(a, b)
    assert row["best_step"][r] == 3 * (first_best + 1)
  kept = programs.edge_mask(new).sum(1)
  assert (kept == g.num_edges - round(0.05 * g.num_edges)).all()
  # The soft edge mask trained, both directions tied: the normalized
  # adjacency of the trained weights is symmetric.
  w = jnp.asarray(recorded[-1][0]["edges"][0])
  a = gnn.normalized_adjacency(jnp.asarray(g.edges[:, 0]),
                               jnp.asarray(g.edges[:, 1]), w, g.num_nodes)
  np.testing.assert_allclose(a, a.T, atol=1e-7)
  assert float(jnp.abs(w - 1).max()) > 1e-3  # the soft mask did move


def _rows_by_step(wd, stage):
  import json
  rows = [json.loads(l) for l in open(wd.file("metrics.jsonl"))]
  rows = [r for r in rows if r["stage"] == stage]
  steps = sorted({r["step"] for r in rows})
  return [sorted((r for r in rows if r["step"] == s),
                 key=lambda r: r["replica"]) for s in steps]
