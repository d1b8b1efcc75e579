import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import models, pruning, tasks
from jaxticket.core import masks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib


def make_trainer(data, name="lenet_300_100", width=0.25, **recipe_kw):
  model = models.build(name, data.num_classes, width=width,
                       input_shape=data.input_shape)
  recipe = optim.Recipe(**{"steps": 100, "batch_size": 32, **recipe_kw})
  prog = step_lib.Program(model, tasks.get(data.task), recipe, data.normalize)
  return loop_lib.Trainer(prog, data)


def pruned_mask(state, fraction=0.7):
  mask = jax.vmap(masks.ones)(state.params)
  keys = jax.random.split(jax.random.key(42), mask_len(state))
  return jax.vmap(lambda p, m, k: pruning.prune(
      p, m, fraction, scorer="random", key=k))(state.params, mask, keys)


def mask_len(state):
  return jax.tree.leaves(state.params)[0].shape[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "adam"])
def test_pruned_weights_and_moments_stay_exactly_zero(mnist1d, optimizer):
  tr = make_trainer(mnist1d, optimizer=optimizer, momentum=0.9)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  mask = pruned_mask(state)
  state = state.replace(params=jax.vmap(masks.apply)(state.params, mask))
  hp = optim.stack_hparams([0.05 if optimizer == "sgd" else 1e-3] * 2,
                           [5e-3] * 2)
  before = jax.tree.map(np.asarray, state.params)
  state, losses = tr.run(state.replace(mask=mask), hp, 300)
  assert np.isfinite(np.asarray(losses)).all()
  triples = []
  jax.tree.map(lambda m, p, p0: m is None or triples.append((m, p, p0)),
               mask, state.params, before, is_leaf=lambda x: x is None)
  assert len(triples) == 3
  for m, p, p0 in triples:
    p, m = np.asarray(p), np.asarray(m)
    assert 0.2 < m.mean() < 0.4
    assert (p[~m] == 0).all()
    assert (p[m] != p0[m]).mean() > 0.9  # survivors did train
  # Momentum / Adam moments are exactly zero at pruned positions too.
  for leaf in jax.tree.leaves(state.opt_state):
    if hasattr(leaf, "shape") and leaf.shape[1:]:
      for m in jax.tree.leaves(mask):
        if m.shape == leaf.shape:
          assert (np.asarray(leaf)[~np.asarray(m)] == 0).all()


@pytest.mark.slow  # ~20 s; vmapped == sequential also in test_sanity, test_dst
def test_vmapped_replicas_equal_sequential_runs(mnist1d):
  tr = make_trainer(mnist1d, name="resnet1d", width=0.25)  # with BatchNorm
  seeds = [3, 4, 5]
  lrs = [0.05, 0.1, 0.2]
  state = tr.init(loop_lib.replica_keys(seeds))
  mask = pruned_mask(state, 0.5)
  hp = optim.stack_hparams(lrs, [1e-4] * 3)
  batched, _ = tr.run(jax.tree.map(jnp.copy, state).replace(mask=mask), hp,
                      10)
  for i, seed in enumerate(seeds):
    single = tr.init(loop_lib.replica_keys([seed]))
    # Replica i starts from exactly the single-seed run's weights.
    for a, b in zip(jax.tree.leaves(single.params),
                    jax.tree.leaves(state.params)):
      np.testing.assert_array_equal(a[0], b[i])
    one_mask = jax.tree.map(lambda m: m[i:i + 1], mask)
    one, _ = tr.run(single.replace(mask=one_mask),
                    optim.stack_hparams([lrs[i]], [1e-4]), 10)
    for a, b in zip(jax.tree.leaves((one.params, one.batch_stats)),
                    jax.tree.leaves((batched.params, batched.batch_stats))):
      np.testing.assert_allclose(a[0], b[i], rtol=1e-4, atol=1e-5)


def test_same_seed_is_bit_identical(mnist1d):
  tr = make_trainer(mnist1d)
  hp = optim.stack_hparams([0.1, 0.1], [1e-4, 1e-4])
  outs = []
  for _ in range(2):
    state = tr.init(loop_lib.replica_keys([7, 8]))
    state, losses = tr.run(state, hp, 25)
    outs.append((jax.tree.map(np.asarray, state.params), np.asarray(losses)))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_array_equal(a, b)


def test_per_replica_learning_rates_really_differ(mnist1d):
  tr = make_trainer(mnist1d)
  state = tr.init(loop_lib.replica_keys([0, 0]))
  init = jax.tree.map(np.asarray, state.params)
  hp = optim.stack_hparams([0.0, 0.1], [0.0, 0.0])
  state, _ = tr.run(state, hp, 20)
  for p, p0 in zip(jax.tree.leaves(state.params), jax.tree.leaves(init)):
    np.testing.assert_array_equal(np.asarray(p)[0], p0[0])  # lr 0: untouched
    assert (np.asarray(p)[1] != p0[1]).any()


def test_lr_schedules():
  r = optim.Recipe(steps=100, schedule="step", milestones=(0.5, 0.75),
                   gamma=0.1)
  f = lambda s, rec: float(optim.lr_factor(s, rec))
  assert f(0, r) == 1 and f(49, r) == 1 and f(50, r) == pytest.approx(0.1)
  assert f(75, r) == pytest.approx(0.01)
  c = dataclasses.replace(r, schedule="cosine")
  assert f(0, c) == pytest.approx(1) and f(50, c) == pytest.approx(0.5)
  assert f(100, c) == pytest.approx(0, abs=1e-7)
  w = dataclasses.replace(r, schedule="constant", warmup_steps=10)
  assert f(0, w) == pytest.approx(0.1) and f(9, w) == 1 and f(60, w) == 1
  with pytest.raises(ValueError, match="schedule"):
    optim.lr_factor(0, dataclasses.replace(r, schedule="wiggly"))


def test_epoch_batches_are_disjoint_and_cover_once():
  key = jax.random.key(0)
  perm = step_lib.epoch_permutation(key, jnp.int32(3), 100)
  idx = np.concatenate([np.asarray(step_lib.batch_indices(perm, jnp.int32(s), 32))
                        for s in range(3)])
  assert len(set(idx.tolist())) == 96  # 3 full batches, last partial dropped
  other = step_lib.epoch_permutation(key, jnp.int32(4), 100)
  assert (np.asarray(other) != np.asarray(perm)).any()


def test_batchnorm_stats_are_per_replica(mnist1d):
  tr = make_trainer(mnist1d, name="resnet1d", width=0.25)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  hp = optim.stack_hparams([0.1, 0.1], [0.0, 0.0])
  state, _ = tr.run(state, hp, 5)
  leaf = np.asarray(jax.tree.leaves(state.batch_stats)[0])
  assert leaf.shape[0] == 2 and (leaf[0] != leaf[1]).any()
  ev = tr.evaluate(state)
  assert ev.test_accuracy.shape == (2,)
  assert ((0 <= np.asarray(ev.test_accuracy)) &
          (np.asarray(ev.test_accuracy) <= 1)).all()


def test_evaluate_matches_numpy(mnist1d):
  tr = make_trainer(mnist1d)
  state = tr.init(loop_lib.replica_keys([0]))
  params = loop_lib.tree_index(state.params, 0)
  logits = np.asarray(tr.prog.model.apply(
      {"params": params}, mnist1d.normalize(mnist1d.test_x)))
  acc = (logits.argmax(-1) == mnist1d.test_y).mean()
  # evaluate() pads to fixed batches; padding must not count.
  loss, got = loop_lib.evaluate(tr.prog, params, {}, jnp.asarray(mnist1d.test_x),
                             jnp.asarray(mnist1d.test_y), batch_size=300)
  assert float(got) == pytest.approx(acc, abs=1e-6)


@pytest.mark.slow
def test_augmented_training_runs_and_changes_batches():
  import tensorflow_datasets as tfds
  from jaxticket import data as data_lib
  with tfds.testing.mock_data(num_examples=64):
    d = data_lib.load("cifar10")
  out = {}
  for augment in (False, True):
    tr = make_trainer(d, name="conv2", width=0.125, batch_size=8,
                      augment=augment)
    state = tr.init(loop_lib.replica_keys([0]))
    state, losses = tr.run(state,
                           optim.stack_hparams([0.01], [0.0]), 3)
    assert np.isfinite(np.asarray(losses)).all()
    out[augment] = np.asarray(losses)
  assert out[False][0, 0] != out[True][0, 0]


@pytest.mark.slow  # ~10 s or more of compiling
def test_bfloat16_compute_keeps_float32_master_weights(mnist1d):
  tr32 = make_trainer(mnist1d, name="resnet1d", width=0.25)
  tr16 = make_trainer(mnist1d, name="resnet1d", width=0.25,
                      compute_dtype="bfloat16")
  hp = optim.stack_hparams([0.05] * 2, [1e-4] * 2)
  outs = []
  for tr in (tr32, tr16):
    state = tr.init(loop_lib.replica_keys([0, 1]))
    state, losses = tr.run(state, hp, 20)
    outs.append((state, np.asarray(losses)))
  (s32, l32), (s16, l16) = outs
  for leaf in jax.tree.leaves((s16.params, s16.batch_stats, s16.opt_state)):
    assert leaf.dtype in (jnp.float32, jnp.int32)
  assert np.isfinite(l16).all()
  # Same trajectory to bfloat16 precision, but not bit-identical.
  np.testing.assert_allclose(l16, l32, rtol=0.05, atol=0.05)
  assert not np.array_equal(l16, l32)
