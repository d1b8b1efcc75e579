"""Pruning-at-initialization scorers against references that can fail:
SNIP vs a finite-difference gradient, GraSP's Hg vs the explicit Hessian,
SynFlow vs its closed form (path sums of |w|) on deep chains where plain
float32 overflows, the rounds' schedule, vmap == one by one, and the
iterative GraSP variant (GRASP-It) vs a NumPy re-implementation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxticket import models
from jaxticket.core import masks
from jaxticket.pruning import allocators, rounds, scorers
from jaxticket.pruning.scorers import grasp as grasp_lib
from jaxticket.pruning.scorers import synflow as synflow_lib


def xent(outputs, y):
  return optax.softmax_cross_entropy_with_integer_labels(outputs, y).mean()


def context(model, variables, batch, key=0, input_shape=None):
  stats = variables.get("batch_stats", {})

  def forward(p, s, x, train):
    v = {"params": p, **({"batch_stats": s} if s else {})}
    if train and s:
      return model.apply(v, x, train=True, mutable=["batch_stats"])[0]
    return model.apply(v, x, train=train)

  params = variables["params"]
  return scorers.ScoreContext(
      params, masks.ones(params), jax.random.key(key), None, (batch,),
      forward, xent, stats, tuple(input_shape or batch[0].shape[1:]))


def tiny_mlp():
  model = models.build("mlp", 3, width=0.02, depth=1)  # 6 -> 5 -> 3
  x = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
  y = np.arange(8) % 3
  v = model.init(jax.random.key(0), jnp.zeros((1, 6)), train=False)
  v = {"params": jax.tree.map(  # nonzero biases exercise more of the net
      lambda a: a + 0.1 * jax.random.normal(jax.random.key(3), a.shape),
      v["params"])}
  return model, v, (jnp.asarray(x), jnp.asarray(y))


def numpy_loss(p, x, y):
  """The same MLP and cross-entropy in float64 NumPy."""
  h = np.maximum(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
  z = h @ p["head"]["kernel"] + p["head"]["bias"]
  z = z - z.max(1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(1, keepdims=True))
  return -logp[np.arange(len(y)), y].mean()


def test_snip_equals_abs_g_times_w_from_finite_differences():
  model, v, (x, y) = tiny_mlp()
  ctx = context(model, v, (x, y))
  got = scorers.get("snip")(ctx)
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), v["params"])
  x64, h = np.asarray(x, np.float64), 1e-6
  ref = {}
  for layer in ("Dense_0", "head"):
    w = p64[layer]["kernel"]
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
      for sign in (1, -1):
        q = jax.tree.map(np.copy, p64)
        q[layer]["kernel"][idx] += sign * h
        g[idx] += sign * numpy_loss(q, x64, np.asarray(y)) / (2 * h)
    ref[layer] = np.abs(g * w)
  total = sum(r.sum() for r in ref.values())
  for layer in ref:
    np.testing.assert_allclose(got[layer]["kernel"], ref[layer] / total,
                               rtol=2e-3, atol=1e-6)
  assert got["head"]["bias"] is None
  np.testing.assert_allclose(sum(float(s.sum()) for s in
                                 jax.tree.leaves(got)), 1.0, rtol=1e-5)


def test_grasp_hg_equals_explicit_hessian_times_g():
  model, v, batch = tiny_mlp()
  ctx = context(model, v, batch)
  g, hg = grasp_lib.hessian_gradient(ctx, temperature=200.0)
  params = v["params"]
  names = ("Dense_0", "head")
  shapes = [params[n]["kernel"].shape for n in names]
  sizes = [int(np.prod(s)) for s in shapes]

  def unflat(vec):
    out = jax.tree.map(lambda a: a, params)
    parts = jnp.split(vec, np.cumsum(sizes)[:-1])
    for n, part, shape in zip(names, parts, shapes):
      out[n] = {**out[n], "kernel": part.reshape(shape)}
    return out

  flat = jnp.concatenate([params[n]["kernel"].ravel() for n in names])
  f = lambda vec: ctx.loss(unflat(vec), batch, 200.0)
  hess = jax.hessian(f)(flat)  # explicit, in the test only
  grad = jax.grad(f)(flat)
  want = hess @ grad
  got = jnp.concatenate([hg[n]["kernel"].ravel() for n in names])
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9)
  np.testing.assert_allclose(jnp.concatenate(
      [g[n]["kernel"].ravel() for n in names]), grad, rtol=1e-5, atol=1e-9)
  # Keeping the largest w * Hg is GraSP's removal of the largest -w * Hg.
  scores = scorers.get("grasp")(ctx)
  groups = rounds.global_groups(ctx.mask)
  kept = allocators.keep_top(scores, ctx.mask, groups, {"body": 10})
  s_grasp = -(flat * want)  # GraSP's S(-theta), Eq. 8
  removed = np.argsort(-np.asarray(s_grasp))[:flat.size - 10]
  keep_ref = np.ones(flat.size, bool)
  keep_ref[removed] = False
  np.testing.assert_array_equal(np.concatenate(
      [np.asarray(kept[n]["kernel"]).ravel() for n in names]), keep_ref)


def test_grasp_temperature_changes_the_scores():
  model, v, batch = tiny_mlp()
  ctx = context(model, v, batch)
  a = scorers.get("grasp", temperature=200.0)(ctx)
  b = scorers.get("grasp", temperature=1.0)(ctx)
  assert not np.allclose(a["head"]["kernel"], b["head"]["kernel"])


def test_grasp_reinit_scores_a_xavier_redrawn_copy():
  """GraSP's code (reinit=True) re-draws each Linear weight Xavier-normal
  before scoring: kernels change, biases stay, the std is
  sqrt(2 / (fan_in + fan_out)), and the scores are those of the copy."""
  model = models.build("mlp", 3, width=1.0, depth=1)
  x = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
  v = model.init(jax.random.key(0), jnp.zeros((1, 6)), train=False)
  batch = (jnp.asarray(x), jnp.asarray(np.arange(8) % 3))
  ctx = context(model, v, batch)
  copy = grasp_lib.xavier_reinit(ctx)
  k0, k1 = ctx.params["Dense_0"]["kernel"], copy.params["Dense_0"]["kernel"]
  assert not np.allclose(k0, k1)
  np.testing.assert_array_equal(copy.params["Dense_0"]["bias"],
                                ctx.params["Dense_0"]["bias"])
  want = np.sqrt(2.0 / sum(k1.shape))
  assert k1.size > 1000  # std within 5% of a few thousand draws
  assert abs(float(np.std(k1)) / want - 1) < 0.05
  assert abs(float(np.mean(k1))) < 3 * want / np.sqrt(k1.size)
  got = scorers.get("grasp", reinit=True)(ctx)
  ref = scorers.get("grasp")(copy)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
    np.testing.assert_array_equal(a, b)
  plain = scorers.get("grasp")(ctx)
  assert not np.allclose(plain["Dense_0"]["kernel"], got["Dense_0"]["kernel"])


class Chain(nn.Module):
  """Dense layers without biases (a chain) or residual MLP blocks."""
  widths: tuple
  residual: bool = False

  @nn.compact
  def __call__(self, x, train=False):
    init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
    for w in self.widths:
      if self.residual:
        h = nn.relu(nn.Dense(w, use_bias=False, kernel_init=init)(x))
        x = nn.relu(nn.Dense(w, use_bias=False, kernel_init=init)(h) + x)
      else:
        x = nn.relu(nn.Dense(w, use_bias=False, kernel_init=init)(x))
    return nn.Dense(3, use_bias=False, name="head")(x)


def chain_reference(kernels, width_in):
  """SynFlow of a bias-free chain: score(W_l)_ij = |W_l|_ij * (path sum of
  |w| into i) * (path sum from j to the outputs), in float64."""
  a = [np.abs(np.asarray(k, np.float64)) for k in kernels]
  fwd = [np.ones(width_in)]
  for k in a:
    fwd.append(fwd[-1] @ k)
  back = [np.ones(a[-1].shape[1])]
  for k in reversed(a):
    back.insert(0, k @ back[0])
  return [np.outer(fwd[l], back[l + 1]) * a[l] for l in range(len(a))]


def residual_reference(blocks, head, width):
  """SynFlow of relu(W2 relu(W1 x)) + x blocks, float64: the linearized
  block is x -> x (I + |W1||W2|) (row vectors)."""
  a = [(np.abs(np.asarray(w1, np.float64)), np.abs(np.asarray(w2, np.float64)))
       for w1, w2 in blocks]
  hd = np.abs(np.asarray(head, np.float64))
  fwd = [np.ones(width)]
  for w1, w2 in a:
    fwd.append(fwd[-1] + fwd[-1] @ w1 @ w2)
  back = [hd @ np.ones(hd.shape[1])]  # d R / d x at the last block's output
  for w1, w2 in reversed(a):
    back.insert(0, back[0] + w1 @ (w2 @ back[0]))
  scores = []
  for l, (w1, w2) in enumerate(a):
    scores.append(np.outer(fwd[l], w2 @ back[l + 1]) * w1)
    scores.append(np.outer(fwd[l] @ w1, back[l + 1]) * w2)
  scores.append(np.outer(fwd[-1], np.ones(hd.shape[1])) * hd)
  return scores


def flat_kernels(tree, order):
  paths = masks.creation_order(order)
  flat = {p: x for p, x in zip(
      jax.tree.leaves(masks.leaf_paths(tree)), jax.tree.leaves(tree))}
  return [flat[p] for p in paths]


def plain_float32_synflow(ctx):
  """The reference code's computation, unscaled, in float32."""
  params = jax.tree.map(jnp.abs, ctx.params)
  r = lambda p: jnp.sum(ctx.forward(p, {}, jnp.ones((1, *ctx.input_shape)),
                                    False))
  g = jax.grad(r)(params)
  return jax.tree.map(lambda a, b: jnp.abs(a * b), g, params), r(params)


@pytest.mark.parametrize("residual", [False, True])
def test_synflow_closed_form_on_deep_nets_where_float32_overflows(residual):
  width, depth = (16, 30) if residual else (32, 50)
  model = Chain((width,) * depth, residual)
  v = model.init(jax.random.key(0), jnp.zeros((1, width)))
  ctx = context(model, v, (jnp.zeros((1, width)), jnp.zeros(1, jnp.int32)))
  kernels = flat_kernels(v["params"], v["params"])
  if residual:
    ref = residual_reference(list(zip(kernels[:-1:2], kernels[1:-1:2])),
                             kernels[-1], width)
  else:
    ref = chain_reference(kernels, width)
  log2r = np.log2(sum(r.sum() for r in ref) / (width if residual else 1))
  # the net is deep enough that the plain float32 computation fails
  plain, r = plain_float32_synflow(ctx)
  assert not np.isfinite(float(r)) and log2r > 128
  got = flat_kernels(scorers.get("synflow")(ctx), v["params"])
  assert all(np.isfinite(np.asarray(g)).all() for g in got)
  total_ref = sum(r.sum() for r in ref)
  total_got = sum(float(jnp.sum(g, dtype=jnp.float32)) for g in got)
  for g, r in zip(got, ref):  # equal up to the one common power of two
    np.testing.assert_allclose(np.asarray(g, np.float64) / total_got,
                               r / total_ref, rtol=2e-4, atol=1e-30)
  np.testing.assert_allclose(float(synflow_lib.log2_flow(ctx)),
                             np.log2(ref[-1].sum()), atol=1e-3)


@pytest.mark.slow
def test_synflow_on_a_resnet_with_batchnorm_is_a_positive_rescaling():
  """With nonzero biases and BN means, the rescaled scores equal the plain
  float32 ones (a net small enough not to overflow) times one factor."""
  model = models.build("resnet20", 10, width=0.25, input_shape=(8, 8, 3))
  v = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  rng = jax.random.key(7)
  v = jax.tree.map(lambda a: a + 0.05 * jax.random.normal(rng, a.shape), v)
  ctx = context(model, v, (jnp.zeros((1, 8, 8, 3)), jnp.zeros(1, jnp.int32)))

  def both():
    params, stats = synflow_lib.linearize(ctx)
    r = lambda p: synflow_lib.flow(ctx, p, stats, jnp.float32(1.0))
    plain = jax.tree.map(lambda a, b: jnp.abs(a * b), jax.grad(r)(params),
                         params)
    return scorers.get("synflow")(ctx), masks.map_prunable(
        lambda m, x: x, ctx.mask, plain)

  got, plain = jax.jit(both)()
  a = np.concatenate([np.asarray(x).ravel() for x in jax.tree.leaves(got)])
  b = np.concatenate([np.asarray(x).ravel() for x in jax.tree.leaves(plain)])
  assert np.isfinite(b).all() and (b > 0).all()
  ratio = a / b
  np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
  assert ratio[0] == 2.0 ** np.round(np.log2(ratio[0]))  # a power of two


def test_rounds_schedule_and_python_loop_reference():
  model, v, batch = tiny_mlp()
  ctx = context(model, v, batch)
  groups = rounds.global_groups(ctx.mask)
  total = sum(int(np.prod(m.shape)) for m in jax.tree.leaves(ctx.mask))
  counts = {"body": jnp.int32(7)}
  scorer = scorers.get("snip")
  got = jax.jit(lambda: rounds.prune_in_rounds(scorer, ctx, groups, counts,
                                               5))()
  mask = ctx.mask  # the same rounds by hand, in Python
  for k in range(1, 6):
    scores = scorer(ctx.replace(mask=mask, key=jax.random.fold_in(ctx.key,
                                                                  k - 1)))
    want = round(total * (7 / total) ** (k / 5)) if k < 5 else 7
    mask = allocators.keep_top(scores, mask, groups, {"body": want})
    assert int(masks.count(mask)[0]) == want
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(mask)):
    np.testing.assert_array_equal(a, b)
  # one compiled loop, the scorer traced once
  jaxpr = jax.make_jaxpr(lambda: rounds.prune_in_rounds(
      scorer, ctx, groups, counts, 5))()
  # one loop over the rounds at the top level (fori_loop with static
  # bounds lowers to a scan), everything else inside it
  loops = [e for e in jaxpr.jaxpr.eqns
           if e.primitive.name in ("scan", "while")]
  assert len(loops) == 1 and loops[0].params.get("length", 5) == 5


def test_layer_counts_are_exact_per_layer():
  model, v, batch = tiny_mlp()
  ctx = context(model, v, batch)
  groups = rounds.layer_groups(ctx.mask)
  table = rounds.layer_counts_table(groups, jnp.array([9, 4]))
  mask = rounds.prune_in_rounds(scorers.get("magnitude"), ctx, groups, table, 3)
  assert [int(m.sum()) for m in jax.tree.leaves(mask)] == [9, 4]
  # magnitude keeps the largest |w| of each layer
  w = np.abs(np.asarray(v["params"]["Dense_0"]["kernel"])).ravel()
  keep = np.zeros(w.size, bool)
  keep[np.argsort(-w)[:9]] = True
  np.testing.assert_array_equal(np.asarray(mask["Dense_0"]["kernel"]).ravel(),
                                keep)


@pytest.mark.parametrize("name,n_rounds,model_name", [
    ("random", 1, "mlp"), ("magnitude", 1, "mlp"), ("snip", 1, "mlp"),
    ("grasp", 1, "mlp"), ("snip", 3, "mlp"), ("grasp_it", 3, "mlp"),
    ("synflow", 1, "mlp"),
    pytest.param("synflow", 4, "conv2", marks=pytest.mark.slow)])
def test_masks_equal_under_vmap_and_one_by_one(name, n_rounds, model_name):
  model = models.build(model_name, 4, width=0.1, input_shape=(8, 8, 1))
  keys = jax.random.split(jax.random.key(0), 3)
  variables = jax.vmap(lambda k: model.init(
      k, jnp.zeros((1, 8, 8, 1)), train=False))(keys)
  xs = jax.random.normal(jax.random.key(1), (3, 12, 8, 8, 1))
  ys = jax.random.randint(jax.random.key(2), (3, 12), 0, 4)
  densities = jnp.array([0.5, 0.1, 0.02])
  scorer = scorers.get(name)

  def one(v, k, x, y, d):
    ctx = context(model, v, (x, y)).replace(key=k)
    groups = rounds.global_groups(ctx.mask)
    return rounds.prune_in_rounds(scorer, ctx, groups,
                                  rounds.global_counts(ctx.mask, d), n_rounds)

  batched = jax.jit(jax.vmap(one))(variables, keys, xs, ys, densities)
  for r in range(3):
    single = jax.jit(one)(jax.tree.map(lambda a: a[r], variables), keys[r],
                          xs[r], ys[r], densities[r])
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
      np.testing.assert_array_equal(a[r], b)
    kept, total = masks.count(single)
    assert int(kept) == int(np.floor(float(densities[r]) * total + 0.5))


@pytest.mark.parametrize("seed", range(4))
def test_keep_top_bisection_equals_the_sort_with_ties_and_dead_weights(seed):
  rng = np.random.default_rng(seed)
  shapes = [(7, 5), (11,), (3, 4)]
  # few distinct values: many ties; signed zeros; some weights already dead
  scores = [jnp.asarray(rng.choice([-1.5, -0.0, 0.0, 0.25, 0.25, 2.0, 7.0],
                                   size=s).astype(np.float32)) for s in shapes]
  alive = [jnp.asarray(rng.random(s) > 0.3) for s in shapes]
  n_alive = sum(int(a.sum()) for a in alive)
  for n_keep in sorted({0, 1, n_alive // 3, n_alive // 2, n_alive - 1,
                        n_alive}):
    want = allocators._drop_lowest(scores, alive,
                                   jnp.int32(n_alive - n_keep))
    got = allocators._keep_highest(scores, alive, jnp.int32(n_keep))
    for a, b in zip(got, want):
      np.testing.assert_array_equal(a, b)
    assert sum(int(a.sum()) for a in got) == n_keep


def numpy_kernel_grads(p64, x64, y, h=1e-6):
  """Central finite differences of :func:`numpy_loss` on the kernels."""
  out = {}
  for layer in ("Dense_0", "head"):
    w = p64[layer]["kernel"]
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
      for sign in (1, -1):
        q = jax.tree.map(np.copy, p64)
        q[layer]["kernel"][idx] += sign * h
        g[idx] += sign * numpy_loss(q, x64, y) / (2 * h)
    out[layer] = g
  return out


def test_grasp_iter_equals_de_jorge_grasp_it_in_numpy():
  """GRASP-It (de Jorge et al. 2021; naver/force prune_method=2) written
  out in float64 NumPy: every round, the finite-difference gradient of the
  MASKED net, saliency g^2, pruned weights out of the running, the
  globally largest kept at the round's count (d^(k/n) schedule)."""
  model, v, (x, y) = tiny_mlp()
  ctx = context(model, v, (x, y))
  # the scorer alone: g^2 / sum g^2
  got = scorers.get("grasp_it")(ctx)
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), v["params"])
  x64, y64 = np.asarray(x, np.float64), np.asarray(y)
  g = numpy_kernel_grads(p64, x64, y64)
  total = sum((gg ** 2).sum() for gg in g.values())
  for layer in g:
    np.testing.assert_allclose(got[layer]["kernel"], g[layer] ** 2 / total,
                               rtol=2e-3, atol=1e-7)
  assert got["head"]["bias"] is None
  # the iteration
  n_rounds, final = 3, 9
  groups = rounds.global_groups(ctx.mask)
  mask = jax.jit(lambda: rounds.prune_in_rounds(
      scorers.get("grasp_it"), ctx, groups, {"body": jnp.int32(final)},
      n_rounds))()
  layers = ("Dense_0", "head")
  sizes = [p64[l]["kernel"].size for l in layers]
  alive = np.ones(sum(sizes), bool)
  for k in range(1, n_rounds + 1):
    q = jax.tree.map(np.copy, p64)
    start = 0
    for l, n in zip(layers, sizes):
      q[l]["kernel"] = q[l]["kernel"] * alive[start:start + n].reshape(
          q[l]["kernel"].shape)
      start += n
    g = numpy_kernel_grads(q, x64, y64)
    sal = np.concatenate([g[l].ravel() ** 2 for l in layers])
    sal = np.where(alive, sal, -np.inf)  # pruned weights never return
    count = (final if k == n_rounds else
             round(sum(sizes) * (final / sum(sizes)) ** (k / n_rounds)))
    order = np.argsort(-sal, kind="stable")
    kept = np.zeros_like(alive)
    kept[order[:count]] = True
    # the reference's ranking is not a near-tie at the threshold
    assert sal[order[count - 1]] > 1.001 * sal[order[count]]
    alive = kept
  want = np.split(alive, np.cumsum(sizes)[:-1])
  for l, w in zip(layers, want):
    np.testing.assert_array_equal(
        np.asarray(mask[l]["kernel"]).ravel(), w, err_msg=l)
  assert int(masks.count(mask)[0]) == final
  # the rounds matter here: one round of g^2 keeps another mask
  one_shot = rounds.prune_in_rounds(scorers.get("grasp_it"), ctx, groups,
                                    {"body": jnp.int32(final)}, 1)
  assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(
      jax.tree.leaves(one_shot), jax.tree.leaves(mask)))
