"""Linear mode connectivity: paths, barriers, BN re-estimation, children,
staggered training, the `lmc` command and IMP's automatic rewind step."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import cli, config
from jaxticket.experiments.imp import imp
from jaxticket.experiments.lmc import lmc
from jaxticket.core import masks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from tests.test_train import make_trainer


def trained_pair(trainer, seeds=(0, 1), steps=30):
  """Two replicas trained from different seeds, as (params, stats) stacks."""
  state = trainer.init(loop_lib.replica_keys(list(seeds)))
  hp = optim.stack_hparams([0.1] * len(seeds), [1e-4] * len(seeds))
  state, _ = trainer.run(state, hp, steps)
  return state


def endpoints(state, i):
  return jax.tree.map(lambda x: x[i:i + 1],
                      (state.params, state.batch_stats))


def small_path_data(data, bn_batches=3):
  return lmc.path_data(data, train_examples=500, bn_batches=bn_batches,
                       batch_size=32, seed=0)


@pytest.fixture(scope="module")
def resnet(mnist1d):
  """A BatchNorm net: trainer and two trained replicas."""
  tr = make_trainer(mnist1d, name="resnet1d", width=0.25)
  return tr, trained_pair(tr)


@pytest.fixture(scope="module")
def resnet_paths(mnist1d, resnet):
  """Compiled path evaluation (5 alphas) with and without re-estimation."""
  tr, _ = resnet
  data = small_path_data(mnist1d)
  return {flag: lmc.Connectivity(tr, data, 5, reestimate=flag)
          for flag in (True, False)}


def test_barrier_formula():
  curve = np.array([[0.1, 0.3, 0.2], [0.2, 0.2, 0.2], [0.1, 0.05, 0.3]])
  np.testing.assert_allclose(lmc.barrier(curve), [0.15, 0.0, 0.1])


def test_barrier_of_network_with_itself_is_zero(resnet, resnet_paths):
  _, state = resnet
  conn = resnet_paths[True]
  a = endpoints(state, 0)
  curves = conn(a, a)
  for name in lmc.PathMetrics._fields:
    np.testing.assert_allclose(lmc.barrier(getattr(curves, name)), 0.0,
                               atol=1e-5)
  # ... while two different networks do have a barrier on this path.
  other = conn(a, endpoints(state, 1))
  assert lmc.barrier(other.test_loss)[0] > 1e-3


@pytest.mark.parametrize("name", ["lenet_300_100", "resnet1d"])
def test_endpoints_reproduce_evaluated_errors(mnist1d, resnet, resnet_paths,
                                              name):
  if name == "resnet1d":
    (tr, state), conn = resnet, resnet_paths[False]
  else:
    tr = make_trainer(mnist1d, name=name, width=0.25)
    state = trained_pair(tr)
    conn = lmc.Connectivity(tr, small_path_data(mnist1d), 5, False)
  # Without re-estimation the endpoints keep their own running statistics.
  curves = conn(endpoints(state, 0), endpoints(state, 1))
  ev = jax.device_get(tr.evaluate(state))
  np.testing.assert_array_equal(curves.test_error[0, 0],
                                1 - ev.test_accuracy[0])
  np.testing.assert_array_equal(curves.test_error[0, -1],
                                1 - ev.test_accuracy[1])
  np.testing.assert_allclose(curves.test_loss[0, [0, -1]], ev.test_loss,
                             rtol=1e-6)


def test_vmapped_alpha_sweep_equals_python_loop(mnist1d, resnet):
  tr, state = resnet
  data = small_path_data(mnist1d)
  a, b = [jax.tree.map(lambda x: x[0], endpoints(state, i)) for i in (0, 1)]
  alphas = jnp.linspace(0, 1, 5)
  swept = jax.jit(lambda: lmc.path(tr.prog, a, b, alphas, data, True))()

  @jax.jit
  def one(alpha):
    params = jax.tree.map(lambda x, y: (1 - alpha) * x + alpha * y, a[0], b[0])
    stats = lmc.reestimate_batch_stats(tr.prog, params, a[1], data.bn_x)
    return loop_lib.evaluate(tr.prog, params, stats, data.test_x, data.test_y)

  for i, alpha in enumerate(np.asarray(alphas)):
    loss, acc = one(alpha)
    np.testing.assert_allclose(swept.test_loss[i], loss, rtol=1e-5)
    np.testing.assert_allclose(swept.test_error[i], 1 - acc, atol=2e-3)


@pytest.mark.slow
def test_bn_reestimation_reference_and_training_data_only(mnist1d, resnet,
                                                         resnet_paths):
  tr, state = resnet
  params, stats = jax.tree.map(lambda x: x[0], endpoints(state, 0))
  x = jnp.asarray(mnist1d.train_x[:64])
  reestimate = jax.jit(lambda xs: lmc.reestimate_batch_stats(
      tr.prog, params, stats, xs))
  new = reestimate(x[None])
  # It changes the statistics ...
  diffs = [float(jnp.abs(u - v).max()) for u, v in
           zip(jax.tree.leaves(new), jax.tree.leaves(stats))]
  assert max(diffs) > 1e-3
  # ... to exactly what training mode normalizes with on that batch: the
  # eval-mode output with re-estimated statistics equals the train-mode
  # output on the same batch (one batch, every BN layer).
  xn = tr.prog.normalize(x)
  train_out, _ = step_lib.apply_model(tr.prog.model, params, stats, xn, True)
  eval_out, _ = step_lib.apply_model(tr.prog.model, params, new, xn, False)
  np.testing.assert_allclose(eval_out, train_out, rtol=1e-4, atol=1e-4)
  # Several batches: the equal-weight mean of per-batch statistics.
  two = reestimate(x.reshape(2, 32, *x.shape[1:]))
  halves = [reestimate(h[None]) for h in x.reshape(2, 32, *x.shape[1:])]
  for t, h0, h1 in zip(*map(jax.tree.leaves, (two, *halves))):
    np.testing.assert_allclose(t, (h0 + h1) / 2, rtol=1e-5, atol=1e-6)
  # Only training data is read: replacing the test split changes test
  # metrics but not the train metrics (which depend on the statistics).
  conn = resnet_paths[True]
  noisy = conn.data._replace(test_x=conn.data.test_x[::-1] * 2.0)
  a, b = endpoints(state, 0), endpoints(state, 1)
  c1, c2 = conn(a, b), conn(a, b, noisy)
  np.testing.assert_array_equal(c1.train_loss, c2.train_loss)
  assert not np.array_equal(c1.test_loss, c2.test_loss)


def test_reestimation_matters_for_interpolated_batchnorm(resnet, resnet_paths):
  _, state = resnet
  a, b = endpoints(state, 0), endpoints(state, 1)
  on, off = resnet_paths[True](a, b), resnet_paths[False](a, b)
  assert not np.allclose(on.test_loss[0, 2], off.test_loss[0, 2])


def test_children_differ_only_by_noise_seed(mnist1d):
  tr = make_trainer(mnist1d)
  parent = tr.init(loop_lib.replica_keys([0]))
  kids = lmc.spawn(parent, [1, 1, 2])
  # Same weights and step; data keys by noise seed.
  for leaf in jax.tree.leaves(kids.params):
    np.testing.assert_array_equal(leaf[0], leaf[2])
  hp = optim.stack_hparams([0.1] * 3, [0.0] * 3)
  kids, _ = tr.run(kids, hp, 15)
  for leaf in jax.tree.leaves(kids.params):
    leaf = np.asarray(leaf)
    np.testing.assert_array_equal(leaf[0], leaf[1])
  assert any(not np.array_equal(l[0], l[2])
             for l in map(np.asarray, jax.tree.leaves(kids.params)))


def test_ticket_children_are_masked_with_fresh_optimizer(mnist1d):
  tr = make_trainer(mnist1d)
  parent = tr.init(loop_lib.replica_keys([0, 1]))
  mask = jax.vmap(masks.ones)(parent.params)
  parent, _ = tr.run(parent, optim.stack_hparams([0.1] * 2, [0.0] * 2), 5)
  keys = jax.random.split(jax.random.key(1), 2)
  from jaxticket import pruning
  ticket = jax.vmap(lambda p, m, k: pruning.prune(
      p, m, 0.5, scorer="random", key=k))(parent.params, mask, keys)
  kids = lmc.spawn(parent, [1, 2], ticket, tr)
  kmask = jax.tree.map(lambda m: None if m is None else np.repeat(m, 2, 0),
                       ticket, is_leaf=lambda x: x is None)
  remasked = jax.vmap(masks.apply)(kids.params, kmask)
  for p, q in zip(jax.tree.leaves(kids.params), jax.tree.leaves(remasked)):
    np.testing.assert_array_equal(p, q)  # already zero where pruned
  assert float(jnp.mean(jax.vmap(masks.density)(kmask))) < 0.6
  for leaf in jax.tree.leaves(kids.opt_state):
    assert not np.asarray(leaf).any()
  assert (np.asarray(kids.step) == 5).all()


@pytest.mark.slow
def test_staggered_replicas_equal_separate_runs(mnist1d):
  """Children of different rewind steps train in one call; each ends at
  `until` exactly as if trained alone from its own step."""
  tr = make_trainer(mnist1d, steps=20)
  s0 = tr.init(loop_lib.replica_keys([0]))
  hp1 = optim.stack_hparams([0.1], [1e-4])
  s6, _ = tr.run(jax.tree.map(jnp.copy, s0), hp1, 6)
  both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), s0, s6)
  hp2 = optim.stack_hparams([0.1] * 2, [1e-4] * 2)
  both = tr.train(both, hp2, until=20, eval_every=7)
  np.testing.assert_array_equal(np.asarray(both.step), [20, 20])
  alone = tr.train(jax.tree.map(jnp.copy, s6), hp1, until=20,
                   eval_every=7)
  for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(both.params)):
    np.testing.assert_allclose(a[0], b[1], rtol=1e-5, atol=1e-6)


def lmc_cfg(**overrides):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  cfg.lmc.alphas = 5
  cfg.lmc.bn_batches = 2
  cfg.lmc.train_examples = 500
  return config.set_values(cfg, overrides)


@pytest.mark.slow  # ~10 s or more of compiling
def test_lmc_ticket_from_imp_workdir(tmp_path):
  imp_cfg = lmc_cfg(**{"imp.levels": 1})
  imp.run(imp_cfg, str(tmp_path / "imp"), progress=False)
  cfg = lmc_cfg(**{"lmc.level": 1, "lmc.imp_workdir": str(tmp_path / "imp"),
                   "lmc.rewind_steps": (0, 10), "imp.levels": 1})
  summary = lmc.run(cfg, str(tmp_path / "lmc"), progress=False)
  assert summary["level"] == 1
  np.testing.assert_allclose(summary["density"], 0.8, atol=0.02)
  conn = summary["connectivity"]
  for who in ("ticket", "scratch"):
    assert len(conn[f"{who}_to_pruned"]["test_barrier"]["per_seed"]) == 2
  # A different network in the source run is refused, naming the key.
  bad = lmc_cfg(**{"lmc.level": 1, "lmc.imp_workdir": str(tmp_path / "imp"),
                   "model.width": 0.5, "imp.levels": 1})
  with pytest.raises(config.ConfigError, match="model.width"):
    lmc.run(bad, str(tmp_path / "bad"), progress=False)


def test_imp_automatic_rewind_step(tmp_path):
  cfg = lmc_cfg(**{"imp.rewind": "step", "imp.rewind_step": -1,
                   "imp.levels": 1, "lmc.rewind_steps": (0, 5, 10),
                   "lmc.stable_barrier": 0.5})
  summary = imp.run(cfg, str(tmp_path), progress=False)
  auto = summary["auto_rewind"]
  assert auto["stable"] and auto["chosen"] == 0  # every k is "stable" at 50%
  assert summary["rewind_step"] == 0
  assert set(auto["test_barrier"]) == {"0", "5", "10"}
  # The dense instability analysis it ran: a complete `lmc` workdir.
  lmc_dir = tmp_path / "auto_rewind"
  dense = json.load(open(lmc_dir / "summary.json"))
  assert [r["rewind_step"] for r in dense["rows"]] == [0, 5, 10]
  for r in dense["rows"]:
    for key in ("test_barrier", "train_barrier"):
      assert set(r[key]) == {"mean", "std", "per_seed"}
      assert len(r[key]["per_seed"]) == cfg.seeds
      assert min(r[key]["per_seed"]) >= 0
    assert len(r["curve"]["test_error"]) == 5
  assert "connectivity" not in dense
  for f in ("report.md", "lmc_paths.png", "instability.png"):
    assert os.path.exists(lmc_dir / f)
  rows = [json.loads(l) for l in open(lmc_dir / "metrics.jsonl")]
  assert len({r["replica"] for r in rows}) == 3 * 2 * cfg.seeds
  # A finished analysis is returned, not recomputed.
  dense_cfg = cfg.copy_and_resolve_references()
  dense_cfg.imp.rewind_step = 0
  assert lmc.run(dense_cfg, str(lmc_dir), progress=False)["rows"] == \
      dense["rows"]
  with pytest.raises(config.ConfigError, match="imp.rewind_step"):
    config.validate(lmc_cfg(**{"imp.rewind_step": -1}))  # rewind=init


@pytest.mark.parametrize("key,value", [("lmc.children", "1"),
                                       ("lmc.alphas", "2"),
                                       ("lmc.rewind_steps", "0,40")])
def test_lmc_bad_config_names_key(tmp_path, capsys, key, value):
  rc = cli.main(["lmc", "--config", "configs/mnist1d_lenet.py:tiny",
                 "--workdir", str(tmp_path / "w"), f"--config.{key}={value}"])
  assert rc == 2
  assert key in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "w")
