import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import pruning
from jaxticket.core import masks
from jaxticket.pruning import controls as random_masks


def ticket():
  rng = np.random.default_rng(0)
  p = {"a": {"kernel": rng.normal(size=(20, 10)).astype(np.float32),
             "bias": np.zeros(10, np.float32)},
       "head": {"kernel": rng.normal(size=(10, 4)).astype(np.float32)}}
  return p, pruning.prune(p, masks.ones(p), 0.6, strategy="layerwise")


def test_shuffle_keeps_per_layer_counts_exactly():
  _, m = ticket()
  s = random_masks.shuffle_within_layers(jax.random.key(1), m)
  for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(s)):
    assert int(a.sum()) == int(b.sum()) and a.shape == b.shape
    assert (np.asarray(a) != np.asarray(b)).any()
  assert s["a"]["bias"] is None


def test_random_with_counts_exact_and_keyed():
  _, m = ticket()
  counts = random_masks.layer_counts(m)
  r1 = random_masks.random_with_counts(jax.random.key(0), m, counts)
  r2 = random_masks.random_with_counts(jax.random.key(0), m, counts)
  r3 = random_masks.random_with_counts(jax.random.key(5), m, counts)
  for a, b, c, n in zip(jax.tree.leaves(r1), jax.tree.leaves(r2),
                        jax.tree.leaves(r3), counts):
    assert int(a.sum()) == int(n)
    np.testing.assert_array_equal(a, b)
    assert (np.asarray(a) != np.asarray(c)).any()


def test_random_with_counts_under_vmap():
  _, m = ticket()
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), m)
  keys = jax.random.split(jax.random.key(0), 2)
  out = jax.vmap(lambda k, mk: random_masks.random_with_counts(
      k, mk, random_masks.layer_counts(mk)))(keys, stacked)
  assert out["a"]["kernel"].shape == (2, 20, 10)
  np.testing.assert_array_equal(out["a"]["kernel"].sum((1, 2)), [80, 80])


# Su et al.'s smart ratio itself: tests/test_smart_ratio.py (against a NumPy
# re-implementation of their code's rule).
