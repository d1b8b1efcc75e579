"""Mask updaters (SET, RigL, GMP, GraNet) reduced to something known: hand
examples, NumPy re-implementations of their rules, static training when
they cannot act, exact counts, zero regrown weights and moments, vmapped
replicas == sequential runs, and the sparsity-aware init's unit scales."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import sparse_training as st
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks, optim
from jaxticket.sparse_training import selection as sel
from jaxticket.sparse_training import sparse_init
from tests.test_train import make_trainer, pruned_mask

one = lambda t, i=0: jax.tree.map(lambda x: None if x is None else x[i], t,
                                  is_leaf=lambda x: x is None)


def np_keep_top(score, k):
  """Reference: the k largest, ties by lower index (stable sort)."""
  order = np.argsort(-score.ravel(), kind="stable")
  out = np.zeros(score.size, bool)
  out[order[:k]] = True
  return out.reshape(score.shape)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keep_top_matches_stable_sort_reference(seed):
  rng = np.random.default_rng(seed)
  score = rng.integers(-3, 3, size=(7, 9)).astype(np.float32)  # many ties
  score[0, :3] = -np.inf
  score[1, :4] = rng.normal(size=4) * 1e-3
  score[2, :2] = [np.inf, -0.0]
  for k in (0, 1, 5, 31, 62, 63):
    got = np.asarray(sel.keep_top(jnp.asarray(score), k))
    np.testing.assert_array_equal(got, np_keep_top(score, k))
    assert got.sum() == k


def test_rigl_grows_exactly_the_top_gradient_positions():
  """A hand-made layer: 4 of 8 connections active; alpha_t = 0.5 drops the
  2 smallest |w| (entries 1 and 3) and grows the 2 largest |g| among the
  6 not kept: entry 3 (just dropped, |g| = 9) comes back and entry 6
  (|g| = 5) is new; entry 4 (|g| = 4) is not grown."""
  mask = jnp.array([True, True, True, True, False, False, False, False])
  w = jnp.array([0.5, -0.1, 2.0, 0.3, 0.0, 0.0, 0.0, 0.0])
  g = jnp.array([0.0, 1.0, 0.0, -9.0, 4.0, 0.5, -5.0, 1.0])
  rigl = st.RigL(end_step=10 ** 9, drop_fraction=0.5, update_every=1)
  new, _ = rigl.update(jnp.int32(0), {"k": w}, {"k": g}, {"k": mask}, (),
                       jax.random.key(0))
  np.testing.assert_array_equal(
      np.asarray(new["k"]), [True, False, True, True, False, False, True,
                             False])


def np_drop_and_grow(mask, w, score, n_drop):
  n_active = mask.sum()
  kept = np_keep_top(np.where(mask, np.abs(w), -np.inf), n_active - n_drop)
  grown = np_keep_top(np.where(kept, -np.inf, score), n_drop)
  return kept | grown


@pytest.mark.parametrize("seed", [0, 1])
def test_rigl_update_matches_numpy_reference_per_layer(seed):
  rng = np.random.default_rng(seed)
  mask = {"a": rng.random((20, 30)) < 0.2, "b": rng.random((30, 5)) < 0.5,
          "bias": None}
  w = {k: rng.normal(size=(20, 30) if k == "a" else (30, 5) if k == "b"
                     else (5,)).astype(np.float32) for k in ("a", "b", "bias")}
  g = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in w.items()}
  rigl = st.RigL(end_step=1000, drop_fraction=0.3, update_every=10)
  step = 399  # t = 400
  frac = 0.3 / 2 * (1 + np.cos(np.pi * 400 / 1000))
  new, _ = rigl.update(jnp.int32(step), w, g, mask, (), jax.random.key(0))
  for k in ("a", "b"):
    n_drop = int(np.floor(frac * mask[k].sum() + 1e-3))
    want = np_drop_and_grow(mask[k], w[k], np.abs(g[k]), n_drop)
    np.testing.assert_array_equal(np.asarray(new[k]), want)
    assert np.asarray(new[k]).sum() == mask[k].sum()
  assert new["bias"] is None
  assert bool(rigl.is_update_step(jnp.int32(399)))
  assert not bool(rigl.is_update_step(jnp.int32(400)))
  assert not bool(rigl.is_update_step(jnp.int32(1009)))  # t > end_step


def sparse_start(tr, seeds=(0, 1)):
  state = tr.init(loop_lib.replica_keys(list(seeds)))
  return tr.restart(state.replace(mask=pruned_mask(state, 0.7)))


@pytest.mark.parametrize("cls", [st.RigL, st.SET])
def test_drop_fraction_zero_equals_static_training_bit_for_bit(mnist1d, cls):
  base = make_trainer(mnist1d, momentum=0.9)
  updater = cls(end_step=100, drop_fraction=0.0, update_every=3)
  dyn = loop_lib.Trainer(base.prog._replace(updater=updater), mnist1d)
  hp = optim.stack_hparams([0.1, 0.05], [1e-4, 1e-4])
  a, _ = base.run(sparse_start(base), hp, 12)
  b, _ = dyn.run(sparse_start(dyn), hp, 12)
  for x, y in zip(jax.tree.leaves((a.params, a.opt_state, a.mask)),
                  jax.tree.leaves((b.params, b.opt_state, b.mask))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("cls,optimizer", [
    (st.RigL, "sgd"), pytest.param(st.SET, "adam", marks=pytest.mark.slow)])
def test_update_keeps_counts_and_regrows_at_zero(mnist1d, cls, optimizer):
  """Right after an update (the last step of the run is an update tick):
  every layer's active count is unchanged, the mask did change, and the
  grown weights and all their optimizer moments are exactly 0."""
  base = make_trainer(mnist1d, optimizer=optimizer, momentum=0.9)
  updater = cls(end_step=100, drop_fraction=0.3, update_every=6)
  dyn = loop_lib.Trainer(base.prog._replace(updater=updater), mnist1d)
  hp = optim.stack_hparams([0.05] * 2 if optimizer == "sgd" else [1e-3] * 2,
                           [1e-4] * 2)
  before, _ = dyn.run(sparse_start(dyn), hp, 11)   # t = 11
  after, _ = dyn.run(jax.tree.map(jnp.copy, before), hp, 1)   # t = 12: tick
  grown = jax.tree.map(lambda a, b: None if a is None else
                       np.asarray(b) & ~np.asarray(a), before.mask,
                       after.mask, is_leaf=lambda x: x is None)
  for m0, m1 in zip(jax.tree.leaves(before.mask), jax.tree.leaves(after.mask)):
    m0, m1 = np.asarray(m0), np.asarray(m1)
    np.testing.assert_array_equal(m0.sum(axis=tuple(range(1, m0.ndim))),
                                  m1.sum(axis=tuple(range(1, m1.ndim))))
  assert any(g.any() for g in jax.tree.leaves(grown))
  full = jax.tree.map(lambda p, g: np.zeros(p.shape, bool) if g is None
                      else g, after.params, grown, is_leaf=lambda x: x is None)
  for p, g in zip(jax.tree.leaves(after.params), jax.tree.leaves(full)):
    assert (np.asarray(p)[g] == 0).all()
  checked = 0
  for leaf in jax.tree.leaves(after.opt_state):
    for g in jax.tree.leaves(grown):
      if leaf.shape == g.shape:
        assert (np.asarray(leaf)[g] == 0).all()
        checked += 1
  assert checked >= 3


def run_ticks(tr, state, hp, every, ticks):
  """The state after each of ``ticks`` chunks of ``every`` steps."""
  out = []
  for _ in range(ticks):
    state, _ = tr.run(state, hp, every)
    out.append(jax.tree.map(jnp.copy, state))
  return out


def test_gmp_density_follows_the_cubic_schedule(mnist1d):
  base = make_trainer(mnist1d)
  gmp = st.GMP(start_step=4, end_step=24, update_every=4, final_density=0.1)
  tr = loop_lib.Trainer(base.prog._replace(updater=gmp), mnist1d)
  state = tr.restart(tr.init(loop_lib.replica_keys([0])))
  sizes = np.array([m.size for m in sel.prunable(one(state.mask))[0]])
  final = np.array([30, 100, 17])  # per-layer targets, set per replica
  state = state.replace(sparse_state={
      "initial_counts": state.sparse_state["initial_counts"],
      "final_counts": jnp.asarray(final[None], jnp.int32)})
  hp = optim.stack_hparams([0.1], [1e-4])
  states = run_ticks(tr, state, hp, 4, 8)
  for i, s in enumerate(states):
    t = 4 * (i + 1)
    p = min(max((t - 4) / 20, 0), 1)
    # Zhu & Gupta (2017, Eq. 1) in densities, per layer.
    d_f = final / sizes
    want = np.round(sizes * (d_f + (1 - d_f) * (1 - p) ** 3))
    got = np.asarray(sel.layer_counts(one(s.mask)))
    np.testing.assert_allclose(got, want, atol=1)  # float rounding only
    np.testing.assert_array_equal(
        got, np.round(final + (sizes - final) * (1 - p) ** 3))
  np.testing.assert_array_equal(np.asarray(sel.layer_counts(one(
      states[-1].mask))), final)
  # Pruned weights never return.
  for a, b in zip(states, states[1:]):
    for m0, m1 in zip(jax.tree.leaves(a.mask), jax.tree.leaves(b.mask)):
      assert not (np.asarray(m1) & ~np.asarray(m0)).any()


@pytest.mark.parametrize("start_density", [
    pytest.param(1.0, marks=pytest.mark.slow), 0.5])
def test_granet_total_density_follows_its_schedule_while_it_regrows(
    mnist1d, start_density):
  """Dense-to-sparse (start 1.0) and sparse-to-sparse (start 0.5, random
  mask): after every tick the total count is the cubic schedule's, and
  regeneration changes the mask beyond pruning (some weights inactive
  before a tick are active after it)."""
  base = make_trainer(mnist1d)
  granet = st.GraNet(start_step=4, end_step=20, total_steps=40,
                     update_every=4, death_rate=0.5, final_density=0.1)
  tr = loop_lib.Trainer(base.prog._replace(updater=granet), mnist1d)
  state = tr.init(loop_lib.replica_keys([3]))
  if start_density < 1:
    state = state.replace(mask=pruned_mask(state, 1 - start_density))
  state = tr.restart(state)
  total = sum(m.size for m in sel.prunable(one(state.mask))[0])
  initial = int(np.asarray(state.sparse_state["initial_count"])[0])
  assert initial == round(start_density * total)
  final = int(np.asarray(state.sparse_state["final_count"])[0])
  hp = optim.stack_hparams([0.1], [1e-4])
  states = run_ticks(tr, state, hp, 4, 8)
  regrown, prev = 0, state
  for i, s in enumerate(states):
    t = 4 * (i + 1)
    p = min(max((t - 4) / 16, 0), 1)
    want = round(final + (initial - final) * (1 - p) ** 3)
    assert int(np.asarray(sel.layer_counts(one(s.mask))).sum()) == want
    regrown += sum(int((np.asarray(b) & ~np.asarray(a)).sum()) for a, b in
                   zip(jax.tree.leaves(prev.mask), jax.tree.leaves(s.mask)))
    prev = s
  assert regrown > 0
  # Death rate: cosine from 0.5 to 0.005 over total_steps (torch's
  # CosineAnnealingLR as GraNet's code steps it).
  for t in (1, 20, 40):
    want = 0.005 + (0.5 - 0.005) * (1 + np.cos(np.pi * t / 40)) / 2
    assert float(granet.rate(jnp.int32(t - 1))) == pytest.approx(want,
                                                                 rel=1e-5)


def test_granet_regeneration_matches_numpy_on_one_tick():
  """After the global pruning step, each layer drops ceil(r * nnz) by |w|
  and regrows as many by |g|: against a NumPy re-implementation."""
  rng = np.random.default_rng(5)
  mask = {"a": np.ones((10, 12), bool), "b": np.ones((12, 4), bool)}
  w = {k: rng.normal(size=m.shape).astype(np.float32) for k, m in mask.items()}
  g = {k: rng.normal(size=m.shape).astype(np.float32) for k, m in mask.items()}
  granet = st.GraNet(start_step=0, end_step=100, total_steps=200,
                     update_every=10)
  state = {"initial_count": jnp.int32(168), "final_count": jnp.int32(20)}
  step = 49  # t = 50
  new, _ = granet.update(jnp.int32(step), w, g, mask, state, None)
  k_t = round(20 + 148 * (1 - 0.5) ** 3)
  flat = np.concatenate([np.abs(w["a"]).ravel(), np.abs(w["b"]).ravel()])
  keep = np_keep_top(flat, k_t)
  pruned = {"a": keep[:120].reshape(10, 12), "b": keep[120:].reshape(12, 4)}
  rate = 0.005 + (0.5 - 0.005) * (1 + np.cos(np.pi * 50 / 200)) / 2
  for k in ("a", "b"):
    n_drop = int(np.ceil(np.float32(rate) * pruned[k].sum() - 1e-3))
    want = np_drop_and_grow(pruned[k], w[k], np.abs(g[k]), n_drop)
    np.testing.assert_array_equal(np.asarray(new[k]), want)


KW = dict(update_every=3)
ALL = {"static": st.Static(), "set": st.SET(end_step=30, **KW),
       "rigl": st.RigL(end_step=30, **KW),
       "gmp": st.GMP(start_step=3, end_step=12, final_density=0.3, **KW),
       "granet": st.GraNet(start_step=3, end_step=12, total_steps=30,
                           final_density=0.3, **KW)}


@pytest.mark.parametrize("names", [
    ("static", "granet"),
    pytest.param(("static", "set", "rigl", "gmp", "granet"),
                 marks=pytest.mark.slow)])
def test_choice_replicas_equal_sequential_runs(mnist1d, names):
  """Methods (static, SET, RigL, GMP, GraNet) on one replica axis of one
  program equal each method's own single-replica run; dense-to-sparse ones
  start dense, the others from a random sparse mask."""
  base = make_trainer(mnist1d)
  updaters = tuple(ALL[n] for n in names)
  n = len(updaters)
  choice = st.Choice(updaters)
  tr = loop_lib.Trainer(base.prog._replace(updater=choice), mnist1d)
  seeds = list(range(n))
  state = base.init(loop_lib.replica_keys(seeds))
  sparse = pruned_mask(state, 0.6)
  dense = state.mask
  which = np.arange(n)
  starts_dense = np.array([x in ("gmp", "granet") for x in names])
  start_mask = jax.tree.map(
      lambda s, d: jnp.where(starts_dense.reshape((-1,) + (1,) * (s.ndim - 1)),
                             d, s), sparse, dense)
  state = tr.restart(state.replace(mask=start_mask))
  state = state.replace(sparse_state=st.assign(state.sparse_state,
                                               which=which))
  hp = optim.stack_hparams([0.1] * n, [1e-4] * n)
  got, _ = tr.run(jax.tree.map(jnp.copy, state), hp, 14)
  assert tr.traces["run"] == 1
  for r, u in enumerate(updaters):
    single = loop_lib.Trainer(base.prog._replace(updater=u), mnist1d)
    s = jax.tree.map(lambda x: x[r:r + 1], state.replace(sparse_state=()))
    s = single.restart(s)
    ref, _ = single.run(s, optim.stack_hparams([0.1], [1e-4]), 14)
    for a, b in zip(jax.tree.leaves(ref.mask), jax.tree.leaves(got.mask)):
      np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[r])
    for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(got.params)):
      np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b)[r],
                                 rtol=1e-4, atol=1e-5)
  # The dynamic ones did change their masks; the static one did not.
  changed = [any((np.asarray(a)[r] != np.asarray(b)[r]).any() for a, b in
                 zip(jax.tree.leaves(start_mask), jax.tree.leaves(got.mask)))
             for r in range(n)]
  assert changed == [x != "static" for x in names]


def test_monitored_logs_masked_gradient_norms_per_update():
  mask = {"k": jnp.array([True, False, True, False]), "b": None}
  g = {"k": jnp.array([3.0, 4.0, 0.0, 12.0]), "b": jnp.array([5.0])}
  w = {"k": jnp.array([1.0, 0.0, 0.1, 0.0]), "b": jnp.array([0.0])}
  mon = st.Monitored(st.RigL(end_step=100, drop_fraction=0.5,
                             update_every=1), capacity=2)
  state = mon.init(w, mask)
  for step in range(3):
    _, state = mon.update(jnp.int32(step), w, g, mask, state, None)
  # RigL drops entry 2 (|w| 0.1), grows entry 3 (|g| 12).
  np.testing.assert_allclose(np.asarray(state["log_before"]),
                             [np.sqrt(9 + 25)] * 2)
  np.testing.assert_allclose(np.asarray(state["log_after"]),
                             [np.sqrt(9 + 144 + 25)] * 2)
  np.testing.assert_array_equal(np.asarray(state["log_step"]), [1, 2])
  assert int(state["updates"]) == 3


def test_sparsity_aware_init_gives_each_unit_its_masked_fan_in_std():
  """He-normal kernel (variance 2 / fan_in) under a mask whose units keep
  different numbers of inputs: after the rescale, unit j's kept weights
  have std sqrt(2 / fan_in_j), and each is the dense draw times
  sqrt(fan_in / fan_in_j)."""
  fan_in, units = 2000, 6
  key = jax.random.key(0)
  w = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")(
      key, (fan_in, units))
  keep_frac = np.array([1.0, 0.5, 0.25, 0.1, 0.05, 0.5])
  rng = np.random.default_rng(0)
  m = np.stack([rng.permutation(fan_in) < int(f * fan_in) for f in keep_frac],
               axis=1)
  params = {"Dense_0": {"kernel": w, "bias": jnp.zeros(units)}}
  mask = {"Dense_0": {"kernel": jnp.asarray(m), "bias": None}}
  out = sparse_init.sparsity_aware(params, mask)["Dense_0"]
  k = np.asarray(out["kernel"])
  assert (k[~m] == 0).all()
  np.testing.assert_array_equal(np.asarray(out["bias"]), np.zeros(units))
  for j in range(units):
    fj = m[:, j].sum()
    np.testing.assert_allclose(k[m[:, j], j], np.asarray(w)[m[:, j], j]
                               * np.sqrt(fan_in / fj), rtol=1e-6)
    # Sampling error of a std from fj normal draws: ~1/sqrt(2 fj).
    assert k[m[:, j], j].std() == pytest.approx(np.sqrt(2 / fj),
                                                rel=4 / np.sqrt(2 * fj))
  # Conv kernels: fan-in counts (h, w, in).
  conv = jnp.ones((3, 3, 4, 2))
  cm = jnp.zeros((3, 3, 4, 2), bool).at[:, :, :2, 0].set(True).at[
      0, 0, 0, 1].set(True)
  scale = np.asarray(sparse_init.unit_scale(cm))
  np.testing.assert_allclose(scale, [np.sqrt(36 / 18), np.sqrt(36 / 1)])


@pytest.mark.parametrize("make,match", [
    (lambda: st.RigL(end_step=10, update_every=0), "update_every=0"),
    (lambda: st.SET(end_step=10, drop_fraction=1.0), "drop_fraction=1.0"),
    (lambda: st.RigL(end_step=10, drop_fraction=-0.1), "drop_fraction=-0.1"),
    (lambda: st.GraNet(start_step=5, end_step=2, total_steps=9),
     "start_step"),
    (lambda: st.GMP(start_step=0, end_step=9, update_every=0),
     "update_every=0"),
])
def test_bad_updater_arguments_name_the_argument(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_unknown_updater_name_is_one_clear_line():
  from jaxticket.core.checks import ConfigError
  with pytest.raises(ConfigError, match="Did you mean 'rigl'"):
    st.get("rigl2")
