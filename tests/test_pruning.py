"""The pruned masks equal a straightforward NumPy re-implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import pruning
from jaxticket.core import masks


def np_prune(leaves, alive, fraction):
  """Reference: prune round(f * alive) lowest |w| among alive weights of the
  concatenated leaves; ties -> lower flat index pruned first."""
  scores = np.concatenate([np.abs(l).ravel() for l in leaves])
  keep = np.concatenate([a.ravel() for a in alive]).copy()
  n_prune = int(np.floor(fraction * keep.sum() + 0.5))
  idx_alive = np.flatnonzero(keep)
  order = idx_alive[np.argsort(scores[idx_alive], kind="stable")]
  keep[order[:n_prune]] = False
  out, start = [], 0
  for a in alive:
    out.append(keep[start:start + a.size].reshape(a.shape))
    start += a.size
  return out


def random_params(seed, ties=True):
  rng = np.random.default_rng(seed)
  shapes = {"a": (7, 5), "b": (5, 4), "head": (4, 3)}
  p = {}
  for k, s in shapes.items():
    w = rng.normal(size=s).astype(np.float32)
    if ties:  # quantize so many magnitudes tie exactly
      w = np.round(w * 2) / 2
    p[k] = {"kernel": w, "bias": np.zeros(s[-1], np.float32)}
  return p


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9])
def test_global_matches_numpy(seed, fraction):
  p = random_params(seed)
  m = masks.ones(p)
  # Start from a partly pruned mask: the fraction is of *remaining* weights.
  m = pruning.prune(p, m, 0.3)
  new = pruning.prune(p, m, fraction, strategy="global")
  keys = ["a", "b", "head"]
  ref = np_prune([p[k]["kernel"] for k in keys],
                 [np.asarray(m[k]["kernel"]) for k in keys], fraction)
  for k, r in zip(keys, ref):
    np.testing.assert_array_equal(np.asarray(new[k]["kernel"]), r)
  assert new["a"]["bias"] is None


@pytest.mark.parametrize("seed", [0, 3])
def test_layerwise_matches_numpy(seed):
  p = random_params(seed)
  m = masks.ones(p)
  new = pruning.prune(p, m, 0.4, strategy="layerwise")
  for k in ["a", "b", "head"]:
    (ref,) = np_prune([p[k]["kernel"]], [np.ones(p[k]["kernel"].shape, bool)],
                      0.4)
    np.testing.assert_array_equal(np.asarray(new[k]["kernel"]), ref)


def test_output_layer_at_its_own_rate():
  p = random_params(5, ties=False)
  m = masks.ones(p)
  special = masks.select(p, masks.DEFAULT_OUTPUT_LAYER)
  new = pruning.prune(p, m, 0.5, special=special, special_fraction=0.25)
  ref_body = np_prune([p["a"]["kernel"], p["b"]["kernel"]],
                      [np.ones((7, 5), bool), np.ones((5, 4), bool)], 0.5)
  (ref_head,) = np_prune([p["head"]["kernel"]], [np.ones((4, 3), bool)], 0.25)
  np.testing.assert_array_equal(new["a"]["kernel"], ref_body[0])
  np.testing.assert_array_equal(new["b"]["kernel"], ref_body[1])
  np.testing.assert_array_equal(new["head"]["kernel"], ref_head)
  # special_fraction=0: the output layer is never pruned.
  keep_head = pruning.prune(p, m, 0.5, special=special, special_fraction=0.0)
  assert bool(keep_head["head"]["kernel"].all())


def test_pruned_stays_pruned_and_counts():
  p = random_params(7)
  m = masks.ones(p)
  total = masks.count(m)[1]
  for level in range(1, 6):
    m = pruning.prune(p, m, 0.2)
    expected = total
    for _ in range(level):
      expected -= int(np.floor(0.2 * expected + 0.5))
    assert int(masks.count(m)[0]) == expected


def test_random_scorer_is_keyed_and_keeps_density():
  p = random_params(0)
  m = masks.ones(p)
  a = pruning.prune(p, m, 0.5, scorer="random", key=jax.random.key(0))
  b = pruning.prune(p, m, 0.5, scorer="random", key=jax.random.key(0))
  c = pruning.prune(p, m, 0.5, scorer="random", key=jax.random.key(1))
  flat = lambda t: np.concatenate([np.asarray(x).ravel()
                                   for x in jax.tree.leaves(t)])
  np.testing.assert_array_equal(flat(a), flat(b))
  assert (flat(a) != flat(c)).any()
  total = masks.count(m)[1]
  assert int(masks.count(a)[0]) == total - int(np.floor(0.5 * total + 0.5))


def test_vmapped_pruning_ranks_each_replica_separately():
  p0, p1 = random_params(0, ties=False), random_params(1, ties=False)
  p1 = jax.tree.map(lambda x: x * 100, p1)  # replica 1 has huge weights
  stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), p0, p1)
  m = jax.vmap(masks.ones)(stacked)
  new = jax.vmap(lambda p, mk: pruning.prune(p, mk, 0.5))(stacked, m)
  d = jax.vmap(masks.density)(new)
  np.testing.assert_allclose(d, [0.5, 0.5], atol=1 / 50)
  single = pruning.prune(p0, masks.ones(p0), 0.5)
  np.testing.assert_array_equal(new["a"]["kernel"][0], single["a"]["kernel"])


def test_fraction_for_density_and_errors():
  assert pruning.fraction_for_density(0.8, 0.64) == pytest.approx(0.2)
  with pytest.raises(ValueError):
    pruning.fraction_for_density(0.5, 0.6)
  with pytest.raises(ValueError, match="strategy"):
    pruning.prune(random_params(0), masks.ones(random_params(0)), 0.2,
                  strategy="diagonal")
  with pytest.raises(ValueError, match="scorer"):
    pruning.prune(random_params(0), masks.ones(random_params(0)), 0.2,
                  scorer="vibes")
