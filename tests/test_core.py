"""The training core's interfaces, each reduced to something known: a mask
updater acting mid-run inside one scan, frozen weights under a scores-only
parametrization, the regression task against a closed form, the optax chain
against a NumPy reference, one compilation per shape."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import data as data_lib
from jaxticket import sparse_training, tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks, optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from tests.test_train import make_trainer, pruned_mask


@dataclasses.dataclass(frozen=True)
class SwapAt:
  """Test updater: at replica-specific steps, replace the mask by a given
  one (prunes some weights and regrows others), counting its updates."""
  new_mask: object
  at: int
  static: bool = False

  def init(self, params, mask):
    return jnp.zeros((), jnp.int32)

  def is_update_step(self, step):
    return step == self.at

  def update(self, step, params, grads, mask, state, key):
    return self.new_mask, state + 1


def _two_masks(state):
  a = pruned_mask(state, 0.5)
  keys = jax.random.split(jax.random.key(9), 2)
  from jaxticket import pruning
  b = jax.vmap(lambda p, m, k: pruning.prune(p, m, 0.5, scorer="random",
                                             key=k))(
      state.params, jax.vmap(masks.ones)(state.params), keys)
  return a, b


@dataclasses.dataclass(frozen=True)
class Never:
  """A dynamic updater whose update step never comes: the update path is
  compiled (lax.cond) but never taken."""
  static: bool = False

  def init(self, params, mask):
    return jnp.zeros((), jnp.int32)

  def is_update_step(self, step):
    return step < 0

  def update(self, step, params, grads, mask, state, key):
    return jax.tree.map(lambda m: None if m is None else ~m, mask,
                        is_leaf=lambda x: x is None), state + 1


def test_updater_that_never_fires_equals_static_training(mnist1d):
  """Design rule: a mask updater that never acts (RigL with drop fraction
  0) is exactly the static program, bit for bit."""
  base = make_trainer(mnist1d)
  prog = base.prog._replace(updater=Never())
  static = loop_lib.Trainer(prog, mnist1d)
  hp = optim.stack_hparams([0.1, 0.2], [1e-4, 1e-4])
  outs = []
  assert sparse_training.get("static").static  # compiles no update at all
  for tr in (base, static):
    state = tr.init(loop_lib.replica_keys([0, 1]))
    state = tr.restart(state.replace(mask=pruned_mask(state, 0.5)))
    out, losses = tr.run(state, hp, 12)
    outs.append((out.params, out.opt_state, out.mask, losses))
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mask_update_mid_run_inside_one_scan(mnist1d):
  """The updater swaps mask A for B after step 5, inside ONE compiled run
  of 10 steps; the result equals 6 steps under A, the swap done by hand
  (re-mask, moments reset where B grew), then 4 steps under B."""
  base = make_trainer(mnist1d, optimizer="sgd", momentum=0.9)
  state0 = base.init(loop_lib.replica_keys([0, 1]))
  mask_a, mask_b = _two_masks(state0)
  state0 = state0.replace(params=jax.vmap(masks.apply)(state0.params, mask_a),
                          mask=mask_a)
  hp = optim.stack_hparams([0.1, 0.1], [1e-4, 1e-4])
  one_b = jax.tree.map(lambda m: None if m is None else m[0], mask_b,
                       is_leaf=lambda x: x is None)
  # Replica masks differ, so give the updater replica 0's B for everyone
  # and compare against that.
  mask_b = jax.tree.map(lambda m: None if m is None else jnp.stack([m, m]),
                        one_b, is_leaf=lambda x: x is None)
  prog = base.prog._replace(updater=SwapAt(one_b, at=5))
  tr = loop_lib.Trainer(prog, mnist1d)
  start = tr.restart(jax.tree.map(jnp.copy, state0))
  got, _ = tr.run(start, hp, 10)
  assert tr.traces["run"] == 1
  np.testing.assert_array_equal(np.asarray(got.sparse_state), [1, 1])
  for m, p in zip(jax.tree.leaves(got.mask), jax.tree.leaves(got.params)):
    assert m.dtype == bool
  for mb, mg in zip(jax.tree.leaves(mask_b), jax.tree.leaves(got.mask)):
    np.testing.assert_array_equal(np.asarray(mb), np.asarray(mg))

  # By hand: 6 static steps under A, the swap, 4 static steps under B.
  ref, _ = base.run(jax.tree.map(jnp.copy, state0), hp, 6)
  grew = jax.tree.map(lambda a, b: None if a is None else b & ~a, mask_a,
                      mask_b, is_leaf=lambda x: x is None)
  grew_full = jax.tree.map(
      lambda p, g: jnp.zeros(p.shape, bool) if g is None else g,
      ref.params, grew, is_leaf=lambda x: x is None)
  opt = jax.vmap(lambda o, g: optim.reset_moments(base.recipe, o, g))(
      ref.opt_state, grew_full)
  ref = ref.replace(params=jax.vmap(masks.apply)(ref.params, mask_b),
                    mask=mask_b, opt_state=opt)
  ref, _ = base.run(ref, hp, 4)
  assert any(bool(np.asarray(g).any()) for g in jax.tree.leaves(grew))
  for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(got.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                               atol=1e-6)
  for p, m in zip(jax.tree.leaves(got.params), jax.tree.leaves(got.mask)):
    if p.shape == m.shape:
      assert (np.asarray(p)[~np.asarray(m)] == 0).all()


@dataclasses.dataclass(frozen=True)
class PruneThenRegrow:
  """Prunes to ``small`` at step 3 and regrows to ``big`` at step 6."""
  small: object
  big: object
  static: bool = False

  def init(self, params, mask):
    return jnp.zeros((), jnp.int32)

  def is_update_step(self, step):
    return (step == 3) | (step == 6)

  def update(self, step, params, grads, mask, state, key):
    pick = lambda a, b: jax.tree.map(
        lambda x, y: None if x is None else jnp.where(step == 3, x, y), a, b,
        is_leaf=lambda x: x is None)
    return pick(self.small, self.big), state + 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_regrown_weights_start_at_zero_with_zero_moments(mnist1d, optimizer):
  """Weights pruned at step 3 and regrown at step 6 are exactly zero right
  after step 6, and so are their optimizer moments (RigL's rule), although
  their moments were non-zero before they were pruned."""
  base = make_trainer(mnist1d, optimizer=optimizer, momentum=0.9)
  state = base.init(loop_lib.replica_keys([0]))
  one = lambda t: jax.tree.map(lambda m: None if m is None else m[0], t,
                               is_leaf=lambda x: x is None)
  big = one(state.mask)
  small = one(pruned_mask(state, 0.5))
  tr = loop_lib.Trainer(base.prog._replace(
      updater=PruneThenRegrow(small, big)), mnist1d)
  state = tr.restart(state)
  lr = 0.05 if optimizer == "sgd" else 1e-3
  hp = optim.stack_hparams([lr], [1e-4])
  got, _ = tr.run(state, hp, 7)  # steps 0..6
  assert int(got.sparse_state[0]) == 2
  regrown = jax.tree.map(lambda b, s: None if b is None else b & ~s, big,
                         small, is_leaf=lambda x: x is None)
  checked = 0
  for leaf in jax.tree.leaves(got.opt_state):
    for g in jax.tree.leaves(regrown):
      if leaf.shape[1:] == g.shape:
        assert (np.asarray(leaf)[0][np.asarray(g)] == 0).all()
        checked += 1
  assert checked >= 3
  for p, g in zip(jax.tree.leaves(got.params), jax.tree.leaves(
      jax.tree.map(lambda p, g: jnp.zeros(p.shape[1:], bool) if g is None
                   else g, got.params, regrown,
                   is_leaf=lambda x: x is None))):
    assert (np.asarray(p)[0][np.asarray(g)] == 0).all()
  # One more step trains them again.
  again, _ = tr.run(got, hp, 1)
  k = np.asarray(again.params["Dense_0"]["kernel"][0])
  assert (k[np.asarray(regrown["Dense_0"]["kernel"])] != 0).mean() > 0.5


def test_update_acts_per_replica(mnist1d):
  """Replicas at different steps: only the one whose step hits the update
  step changes its mask."""
  base = make_trainer(mnist1d)
  state = base.init(loop_lib.replica_keys([0, 1]))
  state = state.replace(step=jnp.asarray([0, 4], jnp.int32))
  full = jax.tree.map(lambda m: None if m is None else m[0], state.mask,
                      is_leaf=lambda x: x is None)
  empty = jax.tree.map(lambda m: None if m is None else jnp.zeros_like(m),
                       full, is_leaf=lambda x: x is None)
  tr = loop_lib.Trainer(base.prog._replace(updater=SwapAt(empty, at=6)),
                        mnist1d)
  got, _ = tr.run(tr.restart(state), optim.stack_hparams([0.1] * 2,
                                                         [0.0] * 2), 4)
  np.testing.assert_array_equal(np.asarray(got.sparse_state), [0, 1])
  for m in jax.tree.leaves(got.mask):
    assert np.asarray(m)[0].all() and not np.asarray(m)[1].any()


class ScoredDense(nn.Module):
  """y = x @ (kernel * sigmoid(scores)): frozen weights, trained scores."""
  features: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (x.shape[-1], self.features))
    scores = self.param("scores", nn.initializers.normal(1.0),
                        (x.shape[-1], self.features))
    return x @ (kernel * jax.nn.sigmoid(scores))


def test_scores_parametrization_keeps_weights_bit_identical(mnist1d):
  recipe = optim.Recipe(steps=50, batch_size=32, optimizer="sgd")
  prog = step_lib.Program(ScoredDense(), tasks.get("classification"), recipe,
                          mnist1d.normalize,
                          parametrization=Parametrization.scores())
  tr = loop_lib.Trainer(prog, mnist1d)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  before = jax.device_get(state.params)
  hp = optim.stack_hparams([0.5, 0.5], [1e-3, 1e-3])  # decay must not touch
  state, losses = tr.run(state, hp, 50)
  after = jax.device_get(state.params)
  np.testing.assert_array_equal(before["kernel"], after["kernel"])
  assert (before["scores"] != after["scores"]).mean() > 0.5
  assert float(np.mean(np.asarray(losses)[:, -10:])) < float(
      np.mean(np.asarray(losses)[:, :10]))
  # The optimizer holds moments only for the trained leaves.
  shapes = [x.shape for x in jax.tree.leaves(state.opt_state)]
  assert shapes.count(before["scores"].shape) == 1


def test_frozen_prunable_weights_keep_their_masked_values(mnist1d):
  """A static sparse mask on frozen weights zeroes them once (restart);
  training never touches them after that. A mask *updater* may not prune
  frozen leaves (they could never come back): refused with the fix."""
  recipe = optim.Recipe(steps=20, batch_size=32, optimizer="sgd")
  prog = step_lib.Program(ScoredDense(), tasks.get("classification"), recipe,
                          mnist1d.normalize,
                          parametrization=Parametrization.scores(),
                          prunable=r"kernel$")
  tr = loop_lib.Trainer(prog, mnist1d)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  keep = jax.random.bernoulli(jax.random.key(1), 0.5,
                              state.params["kernel"].shape)
  state = tr.restart(state.replace(mask={"kernel": keep, "scores": None}))
  start = np.asarray(state.params["kernel"])
  assert (start[~np.asarray(keep)] == 0).all()
  state, _ = tr.run(state, optim.stack_hparams([0.5, 0.5], [1e-3, 1e-3]), 20)
  np.testing.assert_array_equal(np.asarray(state.params["kernel"]), start)
  dynamic = loop_lib.Trainer(prog._replace(updater=Never()), mnist1d)
  with pytest.raises(ValueError, match="masks.prunable matches frozen"):
    dynamic.init(loop_lib.replica_keys([0]))


def regression_data(n=256, d=5, k=2, seed=0):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(d, k)).astype(np.float32)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = (x @ w + 0.01 * rng.normal(size=(n, k))).astype(np.float32)
  return data_lib.Dataset(
      "teacher", x, y, x[:64], y[:64], x[:64], y[:64], num_classes=k,
      scale=1.0, mean=np.zeros(d, np.float32), std=np.ones(d, np.float32),
      augment=False, task="regression")


class Linear(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.Dense(self.features, name="head")(x)


def test_regression_step_matches_closed_form_gradient():
  data = regression_data()
  recipe = optim.Recipe(steps=1, batch_size=256, optimizer="sgd",
                        momentum=0.0)
  prog = step_lib.Program(Linear(2), tasks.get("regression"), recipe,
                          data.normalize)
  tr = loop_lib.Trainer(prog, data)
  state = tr.init(loop_lib.replica_keys([0]))
  w0 = np.asarray(state.params["head"]["kernel"][0], np.float64)
  b0 = np.asarray(state.params["head"]["bias"][0], np.float64)
  lr = 0.1
  new, losses = tr.run(state, optim.stack_hparams([lr], [0.0]), 1)
  x, y = data.train_x.astype(np.float64), data.train_y.astype(np.float64)
  r = x @ w0 + b0 - y  # the batch is the whole (permuted) set: same mean
  loss = 0.5 * (r ** 2).sum(1).mean()
  gw, gb = x.T @ r / len(x), r.mean(0)
  assert float(losses[0, 0]) == pytest.approx(loss, rel=1e-5)
  np.testing.assert_allclose(new.params["head"]["kernel"][0], w0 - lr * gw,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.params["head"]["bias"][0], b0 - lr * gb,
                             rtol=1e-5, atol=1e-6)
  # The score is minus the loss.
  ev = tr.evaluate(new)
  assert float(ev.test_accuracy[0]) == pytest.approx(
      -float(ev.test_loss[0]), rel=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optax_chain_matches_numpy_reference(optimizer):
  """Three steps of the chain (PyTorch conventions: coupled L2 for SGD,
  decoupled decay for AdamW; cosine schedule with warm-up) against NumPy."""
  recipe = optim.Recipe(steps=10, optimizer=optimizer, momentum=0.9,
                        schedule="cosine", warmup_steps=2)
  lr, wd = 0.1, 0.01
  p = np.array([1.0, -2.0, 0.5])
  grads = [np.array([0.3, -0.1, 0.2]), np.array([0.1, 0.4, -0.3]),
           np.array([-0.2, 0.1, 0.05])]
  params = jnp.asarray(p, jnp.float32)
  state = optim.init_optimizer(recipe, params)
  hp = optim.HParams(jnp.float32(lr), jnp.float32(wd))
  import optax
  for t, g in enumerate(grads):
    opt = optim.make_optimizer(recipe, hp, jnp.int32(t))
    u, state = opt.update(jnp.asarray(g, jnp.float32), state, params)
    params = optax.apply_updates(params, u)
  # NumPy reference
  m = np.zeros(3); v = np.zeros(3); ref = p.copy()
  for t, g in enumerate(grads):
    f = 0.5 * (1 + np.cos(np.pi * t / 10)) * min(1.0, (t + 1) / 2)
    if optimizer == "sgd":
      g = g + wd * ref
      m = 0.9 * m + g
      ref = ref - lr * f * m
    else:
      m = 0.9 * m + 0.1 * g
      v = 0.999 * v + 0.001 * g * g
      mh, vh = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
      ref = ref - lr * f * (mh / (np.sqrt(vh) + 1e-8) + wd * ref)
  np.testing.assert_allclose(np.asarray(params), ref, rtol=1e-5, atol=1e-6)


def test_each_program_compiles_once_per_shape(mnist1d):
  tr = make_trainer(mnist1d)
  state = tr.init(loop_lib.replica_keys([0, 1, 2]))
  for lrs in ([0.1] * 3, [0.01, 0.1, 0.3], [0.2] * 3):
    state, _ = tr.run(state, optim.stack_hparams(lrs, [1e-4] * 3), 7)
    tr.evaluate(state)
  state = state.replace(mask=pruned_mask(state, 0.3))  # masks are data too
  state, _ = tr.run(state, optim.stack_hparams([0.1] * 3, [0.0] * 3), 7)
  tr.evaluate(state)
  assert tr.traces == {"init": 1, "run": 1, "evaluate": 1}
  tr.run(state, optim.stack_hparams([0.1] * 3, [0.0] * 3), 5)  # new shape
  assert tr.traces["run"] == 2
