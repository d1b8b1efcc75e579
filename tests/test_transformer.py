"""The BERT-style encoder (issue 17): prunable set, masks under vmap,
padding, pre/post-LN."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import models
from jaxticket.core import masks as masks_lib
from jaxticket.models import transformer

L, V = 12, 40


def _build(norm="post", output="classify", depth=2, pool="cls"):
  return models.build("transformer", 3, width=0.25, depth=depth,
                      vocab_size=V, heads=2, max_len=16, norm=norm,
                      output=output, pool=pool)


def _tokens(key, b=5):
  x = jax.random.randint(key, (b, L), 4, V)
  return x.at[:, 0].set(1).at[:, -3:].set(0)  # [CLS] ... padding


def test_prunable_set_is_bert_tickets_leaves():
  model = _build()
  params = model.init(jax.random.key(0), jnp.zeros((1, L)))["params"]
  mask = masks_lib.ones(params, models.PRUNABLE["transformer"])
  chosen = sorted(masks_lib.path_str(p) for p, m in
                  jax.tree_util.tree_flatten_with_path(
                      mask, is_leaf=lambda x: x is None)[0] if m is not None)
  want = sorted([f"layer_{i}/attention/{n}/kernel" for i in range(2)
                 for n in ("query", "key", "value", "out")]
                + [f"layer_{i}/mlp/{n}/kernel" for i in range(2)
                   for n in ("intermediate", "output")] + ["pooler/kernel"])
  assert chosen == want
  every = [masks_lib.path_str(p) for p, _ in
           jax.tree_util.tree_flatten_with_path(params)[0]]
  for path in every:  # embeddings, norms, biases, head: never
    if path not in want:
      assert not re.search(transformer.PRUNABLE, path), path
  assert "token_embed/embedding" in every and "head/kernel" in every


@pytest.mark.parametrize("norm,output", [("post", "classify"),
                                         ("pre", "mlm")])
def test_vmapped_masked_forward_equals_unmasked_and_sequential(norm, output):
  model = _build(norm, output)
  keys = jax.random.split(jax.random.key(1), 3)
  x = _tokens(jax.random.key(2))
  params = jax.vmap(lambda k: model.init(k, x)["params"])(keys)
  one = lambda p: jax.tree.map(lambda a: a[0], p)
  ones = masks_lib.ones(one(params), transformer.PRUNABLE)
  stacked_ones = jax.tree.map(lambda m: jnp.stack([m] * 3), ones)
  fwd = lambda p, m: model.apply({"params": masks_lib.apply(p, m)}, x)
  masked = jax.vmap(fwd)(params, stacked_ones)
  plain = jax.vmap(lambda p: model.apply({"params": p}, x))(params)
  np.testing.assert_array_equal(np.asarray(masked), np.asarray(plain))
  # Random masks per replica: vmapped == one replica at a time, and the
  # mask matters (the output moves).
  rand = jax.tree.map(
      lambda m: jax.random.bernoulli(jax.random.key(3), 0.5,
                                     (3,) + m.shape), ones)
  got = jax.vmap(fwd)(params, rand)
  for r in range(3):
    pick = lambda t: jax.tree.map(lambda a: a[r], t)
    np.testing.assert_allclose(np.asarray(got[r]),
                               np.asarray(fwd(pick(params), pick(rand))),
                               rtol=1e-5, atol=1e-6)
  assert not np.allclose(np.asarray(got), np.asarray(plain))
  want = (5, 3) if output == "classify" else (5, L, V)
  assert got.shape == (3,) + want


@pytest.mark.parametrize("norm,pool", [("post", "cls"), ("pre", "cls"),
                                       ("pre", "mean"), ("post", "mean")])
def test_padding_is_not_attended(norm, pool):
  model = _build(norm, pool=pool)
  x = _tokens(jax.random.key(4))
  params = model.init(jax.random.key(0), x)["params"]
  out = model.apply({"params": params}, x)
  other = x.at[:, -3:].set(0)  # already padding; now change the pad length
  longer = jnp.concatenate([other[:, :-3], jnp.zeros((5, 4), x.dtype)], 1)
  np.testing.assert_allclose(np.asarray(out),
                             np.asarray(model.apply({"params": params},
                                                    longer)),
                             rtol=1e-5, atol=1e-6)


def _numpy_pooled_head(params, states, tokens, how):
  """NumPy: the pooler + head on the [CLS] state or on the plain mean of
  each row's states at its non-padding positions (padding sliced off)."""
  rows = []
  for h, t in zip(np.asarray(states), np.asarray(tokens)):
    rows.append(h[0] if how == "cls" else h[t != transformer.PAD_ID].mean(0))
  p = jax.tree.map(np.asarray, params)
  pooled = np.tanh(np.stack(rows) @ p["pooler"]["kernel"]
                   + p["pooler"]["bias"])
  return pooled @ p["head"]["kernel"] + p["head"]["bias"]


@pytest.mark.parametrize("how", ["mean", "cls"])
def test_pooling_equals_numpy_over_the_unpadded_tokens(how):
  model = _build("pre", pool=how)
  x = _tokens(jax.random.key(5))
  x = x.at[1, 4:].set(0).at[2, 2:].set(0)  # rows of different lengths
  params = model.init(jax.random.key(0), x)["params"]
  out, st = model.apply({"params": params}, x, capture_intermediates=True)
  states = st["intermediates"]["final_norm"]["__call__"][0]  # (B, L, D)
  np.testing.assert_allclose(np.asarray(out),
                             _numpy_pooled_head(params, states, x, how),
                             rtol=1e-4, atol=1e-5)
  if how == "mean":  # the two poolings really differ
    other = _build("pre", pool="cls").apply({"params": params}, x)
    assert np.abs(np.asarray(other) - np.asarray(out)).max() > 1e-4


def test_bad_options_are_one_line_errors():
  with pytest.raises(ValueError, match="pool"):
    _build(pool="max").init(jax.random.key(0), jnp.zeros((1, L)))
  with pytest.raises(ValueError, match="norm"):
    _build(norm="middle").init(jax.random.key(0), jnp.zeros((1, L)))
  with pytest.raises(ValueError, match="takes no option"):
    models.build("mlp", 3, heads=2)
  with pytest.raises(ValueError, match="max_len"):
    _build().init(jax.random.key(0), jnp.zeros((1, 40)))
