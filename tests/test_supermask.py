"""The supermask mechanism (models/supermask.py), each property reduced to
something known: k = 100% is the dense net; top-k keeps exactly k per layer
(NumPy reference ranking); a structured mask zeroes whole units; the
straight-through gradient against its closed form; frozen weights stay bit
for bit under training (only scores move); replicas of several k in one
vmapped program equal their sequential runs; a new rule with a projection
(a GEM-MINER-style threshold on p in [0, 1]) plugs in as one more class."""

import dataclasses

import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import models, tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.models import supermask as sm


def _flat(params):
  return {"/".join(k): np.asarray(v)
          for k, v in traverse_util.flatten_dict(dict(params)).items()}


def _body_params(params):
  return {k: v for k, v in params.items() if k != "keep"} | {
      name: {kk: vv for kk, vv in sub.items() if kk != "scores"}
      for name, sub in params.items() if isinstance(sub, dict)}


@pytest.mark.parametrize("name,shape,rule", [
    ("lenet_300_100", (40, 1), "layerwise"), ("lenet_300_100", (40, 1), "global"),
    ("lenet_300_100", (40, 1), "units"), ("conv2", (8, 8, 1), "units"),
    pytest.param("resnet20", (8, 8, 3), "layerwise",
                 marks=pytest.mark.slow)])
def test_keeping_everything_is_the_dense_net(name, shape, rule):
  body = models.build(name, 10, width=0.25, input_shape=shape)
  model = sm.Supermask(body, sm.make_rule(rule), keep=1.0)
  x = jax.random.normal(jax.random.key(1), (4, *shape))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  dense = dict(variables, params=_body_params(variables["params"]))
  got = jax.jit(model.apply)(variables, x)
  want = jax.jit(body.apply)(dense, x)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_frozen_kernels_are_signed_kaiming_constant_or_normal():
  body = models.build("lenet_300_100", 10, input_shape=(40, 1))
  x = jnp.zeros((1, 40, 1))
  const = jax.jit(sm.Supermask(body, sm.LayerTopK()).init)(
      jax.random.key(0), x)
  normal = jax.jit(sm.Supermask(body, sm.LayerTopK(),
                                weight_init="kaiming_normal").init)(
                                    jax.random.key(0), x)
  for path, w in _flat(const["params"]).items():
    if path.endswith("kernel"):
      std = np.sqrt(2.0 / w.shape[0])
      np.testing.assert_allclose(np.abs(w), std, rtol=1e-6)
      assert 0.4 < (w > 0).mean() < 0.6
      wn = _flat(normal["params"])[path]
      assert abs(wn.std() / std - 1) < 0.1
    if path.endswith("scores"):  # kaiming_uniform(a=sqrt 5): U(+-1/sqrt fan)
      assert np.abs(w).max() <= 1 / np.sqrt(w.shape[0]) + 1e-7
  assert _flat(const["params"])["keep"] == np.float32(0.5)


def _np_top(a, k):
  """NumPy reference: indices of the k largest |a| (lower index dropped
  first among ties)."""
  order = np.argsort(np.abs(a).reshape(-1), kind="stable")
  keep = np.zeros(a.size, bool)
  keep[order[a.size - k:]] = True
  return keep.reshape(a.shape)


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.77, 1.0])
def test_layerwise_top_k_keeps_exactly_k_per_layer(keep):
  body = models.build("lenet_300_100", 10, width=0.2, input_shape=(40, 1))
  model = sm.Supermask(body, sm.LayerTopK(), keep=keep)
  params = jax.jit(model.init)(jax.random.key(3),
                               jnp.zeros((1, 40, 1)))["params"]
  flat = _flat(params)
  masks = jax.jit(lambda p: sm.hard_masks(model, p))(params)
  assert set(masks) == {"Dense_0/kernel", "Dense_1/kernel", "head/kernel"}
  for path, m in masks.items():
    m = np.asarray(m)
    assert m.sum() == sm.kept_count(m.size, keep)
    np.testing.assert_array_equal(
        m, _np_top(flat[path.replace("kernel", "scores")],
                   sm.kept_count(m.size, keep)))


def test_global_top_k_keeps_k_of_all_layers_ranked_together():
  body = models.build("lenet_300_100", 10, width=0.2, input_shape=(40, 1))
  model = sm.Supermask(body, sm.GlobalTopK(), keep=0.2)
  params = jax.jit(model.init)(jax.random.key(4),
                               jnp.zeros((1, 40, 1)))["params"]
  flat = _flat(params)
  masks = {k: np.asarray(v) for k, v in
           jax.jit(lambda p: sm.hard_masks(model, p))(params).items()}
  total = sum(m.size for m in masks.values())
  assert sum(m.sum() for m in masks.values()) == sm.kept_count(total, 0.2)
  scores = {p: np.abs(flat[p.replace("kernel", "scores")]) for p in masks}
  kept = np.concatenate([scores[p][masks[p]] for p in masks])
  dropped = np.concatenate([scores[p][~masks[p]] for p in masks])
  assert kept.min() >= dropped.max()
  # Layers of different fan-in keep different fractions.
  assert len({round(m.mean(), 3) for m in masks.values()}) > 1


@pytest.mark.parametrize("name,shape", [("lenet_300_100", (40, 1)),
                                        ("conv2", (8, 8, 1))])
def test_structured_mask_zeroes_whole_units(name, shape):
  body = models.build(name, 10, width=0.25, input_shape=shape)
  model = sm.Supermask(body, sm.UnitTopK(), keep=0.3,
                       skip=r"(^|/)head/kernel$")
  x = jax.random.normal(jax.random.key(1), (3, *shape))
  variables = jax.jit(model.init)(jax.random.key(5), x)
  masks = jax.jit(lambda p: sm.hard_masks(model, p))(variables["params"])
  assert "head/kernel" not in masks and masks
  for path, m in masks.items():
    m = np.asarray(m).reshape(-1, m.shape[-1])
    unit_kept = m.all(axis=0)
    assert (unit_kept | ~m.any(axis=0)).all()  # each unit all or nothing
    assert unit_kept.sum() == sm.kept_count(m.shape[-1], 0.3)
  # The effective kernels are zero on exactly the dropped units' columns.
  eff = _flat(jax.jit(model.effective_params)(variables["params"]))
  for path, m in masks.items():
    w = eff[path].reshape(-1, eff[path].shape[-1])
    dropped = ~np.asarray(m).reshape(-1, m.shape[-1]).any(axis=0)
    assert (w[:, dropped] == 0).all() and (w[:, ~dropped] != 0).all()


def test_straight_through_gradient_matches_its_closed_form():
  """y = x @ (W * m(s)), L = sum(y * c): dL/ds = sign(s) * (x^T c) * W for
  per-weight scores, and its column sums for unit scores."""
  import flax.linen as nn

  class One(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      return nn.Dense(5, use_bias=False, name="head")(x)

  x = jax.random.normal(jax.random.key(0), (7, 6))
  c = jax.random.normal(jax.random.key(1), (7, 5))
  for rule in (sm.LayerTopK(), sm.UnitTopK()):
    model = sm.Supermask(One(), rule, keep=0.6)
    params = jax.jit(model.init)(jax.random.key(2), x)["params"]
    g = jax.jit(jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x) * c)))(
        params)
    w = np.asarray(params["head"]["kernel"])
    s = np.asarray(params["head"]["scores"])
    full = np.asarray(x).T @ np.asarray(c) * w
    want = (full if s.ndim == 2 else full.sum(0)) * np.sign(s)
    np.testing.assert_allclose(np.asarray(g["head"]["scores"]), want,
                               rtol=1e-5, atol=1e-6)


def test_unit_masks_on_outgoing_weights_let_dropped_units_learn():
  """With links (MLP: Dense_0 -> Dense_1 -> head) a unit's mask multiplies
  the next kernel's rows: the same function as masking its own column,
  and dL/ds_j = sign(s_j) * sum_b h_j(x_b) dL/dh_j(x_b) for every unit,
  dropped ones included (NumPy reference); masking the column instead
  gives a dropped ReLU unit exactly 0 (its pre-activation is 0)."""
  body = models.build("lenet_300_100", 10, width=0.1, input_shape=(40, 1))
  column = sm.Supermask(body, sm.UnitTopK(), keep=0.4,
                        skip=r"(^|/)head/kernel$")
  rows = sm.with_unit_links(column, (40, 1))
  assert rows.links == (("Dense_0/kernel", "Dense_1/kernel", 1),
                        ("Dense_1/kernel", "head/kernel", 1))
  x = jax.random.normal(jax.random.key(0), (9, 40, 1))
  c = np.asarray(jax.random.normal(jax.random.key(1), (9, 10)))
  params = jax.jit(column.init)(jax.random.key(2), x)["params"]
  loss = lambda model: jax.jit(jax.grad(lambda p: jnp.sum(
      model.apply({"params": p}, x) * c)))(params)
  np.testing.assert_allclose(np.asarray(jax.jit(rows.apply)({"params": params}, x)),
                             np.asarray(jax.jit(column.apply)({"params": params}, x)),
                             rtol=1e-6, atol=1e-6)
  f = _flat(params)
  w0, w1, w2 = (f[f"{n}/kernel"].astype(np.float64)
                for n in ("Dense_0", "Dense_1", "head"))
  s0, s1 = f["Dense_0/scores"], f["Dense_1/scores"]
  m0 = _np_top(s0, sm.kept_count(s0.size, 0.4)).astype(float)
  m1 = _np_top(s1, sm.kept_count(s1.size, 0.4)).astype(float)
  h0 = np.maximum(np.asarray(x).reshape(9, 40) @ w0, 0)
  z1 = (h0 * m0) @ w1
  h1 = np.maximum(z1, 0)
  g_a1 = c @ w2.T  # dL/d(h1 * m1)
  g_a0 = (g_a1 * m1 * (z1 > 0)) @ w1.T  # dL/d(h0 * m0)
  want = {"Dense_0": (h0 * g_a0).sum(0) * np.sign(s0),
          "Dense_1": (h1 * g_a1).sum(0) * np.sign(s1)}
  got = loss(rows)
  for name, m in (("Dense_0", m0), ("Dense_1", m1)):
    g = np.asarray(got[name]["scores"])
    np.testing.assert_allclose(g, want[name], rtol=1e-4, atol=1e-5)
    assert np.abs(g[m == 0]).max() > 0  # dropped units get a gradient
    np.testing.assert_array_equal(  # ... which masking the column kills
        np.asarray(loss(column)[name]["scores"])[m == 0], 0.0)


@pytest.mark.parametrize("name,shape,want", [  # ~20-50 s each (eager init)
    pytest.param("conv2", (8, 8, 1), [
        ("ConvBN_0/Conv_0/kernel", "ConvBN_1/Conv_0/kernel", 1),
        ("ConvBN_1/Conv_0/kernel", "Dense_0/kernel", 16),
        ("Dense_0/kernel", "Dense_1/kernel", 1),
        ("Dense_1/kernel", "head/kernel", 1)], marks=pytest.mark.slow),
    pytest.param("resnet1d", (40, 1), None, marks=pytest.mark.slow)])
def test_unit_links_follow_the_chain_and_skip_residual_outputs(name, shape,
                                                               want):
  """Links only where masking a unit's outgoing rows is the same function:
  through BatchNorm and a channel-last flatten (16 rows per channel), not
  from a residual block's output (it also feeds the skip connection)."""
  body = models.build(name, 10, width=0.25, input_shape=shape)
  model = sm.with_unit_links(sm.Supermask(body, sm.UnitTopK(), keep=0.5,
                                          skip=r"(^|/)head/kernel$"), shape)
  if want is not None:
    assert list(model.links) == want
  else:  # every link is a block's first conv feeding its second
    assert model.links and all(
        p.endswith("ConvBN_0/Conv_0/kernel") and
        c == p.replace("ConvBN_0", "ConvBN_1") for p, c, _ in model.links)
  x = jax.random.normal(jax.random.key(3), (4, *shape))
  variables = jax.jit(model.init)(jax.random.key(4), x)
  plain = dataclasses.replace(model, links=())  # masks on the columns
  # Training mode (batch statistics; unit_links checked inference mode).
  outs = [jax.jit(lambda v, m=m: m.apply(v, x, train=True,
                                         mutable=["batch_stats"])[0])(
                                             variables) for m in (model, plain)]
  np.testing.assert_allclose(np.asarray(outs[0]), np.asarray(outs[1]),
                             rtol=1e-5, atol=1e-5)


def _program(model, steps=30, project=None):
  recipe = optim.Recipe(steps=steps, batch_size=32, optimizer="sgd",
                        schedule="cosine")
  return step_lib.Program(
      model, tasks.get("classification"), recipe, lambda x: x.astype(
          jnp.float32), parametrization=Parametrization.scores(project))


def _trained(trainer, keys, keeps, steps, lr=0.1, wd=1e-4):
  state = trainer.init(loop_lib.replica_keys(keys))
  state = state.replace(params=sm.with_keep(state.params, keeps))
  hp = optim.stack_hparams([lr] * len(keys), [wd] * len(keys))
  return state, trainer.run(state, hp, steps)


@pytest.mark.parametrize("name,width", [
    ("lenet_300_100", 0.25),
    pytest.param("cnn1d", 0.25, marks=pytest.mark.slow),
    pytest.param("resnet1d", 0.25, marks=pytest.mark.slow)])  # BatchNorm
def test_edge_popup_trains_scores_only_under_vmap(mnist1d, name, width):
  body = models.build(name, 10, width=width, input_shape=(40, 1))
  model = sm.Supermask(body, sm.LayerTopK())
  trainer = loop_lib.Trainer(_program(model, 60), mnist1d)
  state0 = trainer.init(loop_lib.replica_keys([0, 1, 0, 1]))
  keeps = [0.3, 0.3, 0.5, 0.5]
  state0 = state0.replace(params=sm.with_keep(state0.params, keeps))
  before = _flat(jax.device_get(state0.params))
  hp = optim.stack_hparams([0.1] * 4, [5e-4] * 4)  # decay: scores only
  state, losses = trainer.run(state0, hp, 60)
  after = _flat(jax.device_get(state.params))
  for path in before:
    if path.endswith("scores"):
      assert (before[path] != after[path]).mean() > 0.5, path
    else:  # kernels, biases, keep, BatchNorm scale/offset: bit-identical
      np.testing.assert_array_equal(before[path], after[path], err_msg=path)
  losses = np.asarray(losses)
  assert (losses[:, -10:].mean(1) < losses[:, :10].mean(1)).all()
  assert trainer.traces["run"] == 1
  # Masks changed during training and still keep exactly k per layer.
  for r, keep in enumerate(keeps):
    params = jax.tree.map(lambda a: a[r], state.params)
    for path, m in jax.jit(lambda p: sm.hard_masks(model, p))(params).items():
      assert int(np.asarray(m).sum()) == sm.kept_count(m.size, keep)
  # The optimizer holds moments for the scores only.
  score_shapes = sorted(v.shape for k, v in before.items()
                        if k.endswith("scores"))
  assert sorted(x.shape for x in jax.tree.leaves(state.opt_state)
                if x.ndim > 1) == score_shapes


def test_replicas_of_several_k_equal_their_sequential_runs(mnist1d):
  body = models.build("lenet_300_100", 10, width=0.25, input_shape=(40, 1))
  trainer = loop_lib.Trainer(_program(sm.Supermask(body, sm.UnitTopK(),
                                                   skip="head"), 20),
                             mnist1d, shard=False)
  _, (both, _) = _trained(trainer, [3, 4], [0.25, 0.6], 20)
  for r, (seed, keep) in enumerate([(3, 0.25), (4, 0.6)]):
    _, (one, _) = _trained(trainer, [seed], [keep], 20)
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(both.params)):
      np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b)[r],
                                 rtol=2e-5, atol=2e-6)


@dataclasses.dataclass(frozen=True)
class Threshold(sm.LayerTopK):
  """A GEM-MINER-style rule written as a test of the interface: scores p in
  [0, 1] from U[0, 1], mask = [p > 0.5] straight-through, p clipped to
  [0, 1] after every step (``project``). ``keep`` is ignored."""
  name: str = "threshold"

  def init_scores(self, key, kernel_shape):
    return jax.random.uniform(key, self.score_shape(kernel_shape))

  def masks(self, scores, keep):
    return [sm.straight_through(p, p > 0.5) for p in scores]

  def project(self, scores):
    return jnp.clip(scores, 0.0, 1.0)


@pytest.mark.slow
def test_a_new_rule_with_a_projection_plugs_in(mnist1d):
  body = models.build("lenet_300_100", 10, width=0.25, input_shape=(40, 1))
  rule = Threshold()
  model = sm.Supermask(body, rule)
  for project in (None, sm.projection(rule)):
    trainer = loop_lib.Trainer(_program(model, 40, project), mnist1d)
    _, (state, losses) = _trained(trainer, [0], [1.0], 40, lr=2.0, wd=0.0)
    scores = [np.asarray(v) for k, v in _flat(state.params).items()
              if k.endswith("scores")]
    lo = min(s.min() for s in scores)
    hi = max(s.max() for s in scores)
    if project is None:  # large steps leave [0, 1] without the projection
      assert lo < 0 or hi > 1
    else:
      assert lo >= 0 and hi <= 1
      assert lo == 0 or hi == 1  # the projection was active
    masks = jax.jit(lambda p: sm.hard_masks(model, p))(
        jax.tree.map(lambda a: a[0], state.params))
    for path, m in masks.items():
      p = _flat(state.params)[path.replace("kernel", "scores")][0]
      np.testing.assert_array_equal(np.asarray(m), p > 0.5)


def test_unknown_rule_is_one_clear_error():
  from jaxticket.core.checks import ConfigError
  with pytest.raises(ConfigError, match="Unknown mask rule 'topk'.*"
                     "layerwise, global, units"):
    sm.make_rule("topk")


def test_top_fraction_with_ties_keeps_exactly_k_like_a_stable_sort():
  a = np.round(np.abs(np.random.default_rng(0).normal(size=(50, 7))) * 2) / 2
  f = jax.jit(sm.top_fraction)
  for keep in (0.0, 0.01, 0.33, 0.5, 0.9, 1.0):
    k = sm.kept_count(a.size, keep)
    got = np.asarray(f(jnp.asarray(a, jnp.float32), keep))
    np.testing.assert_array_equal(got, _np_top(a, k))
