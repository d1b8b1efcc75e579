import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket.core import masks


def params():
  return {"Dense_0": {"kernel": jnp.arange(6.0).reshape(2, 3) - 2,
                      "bias": jnp.ones(3)},
          "BatchNorm_0": {"scale": jnp.ones(3), "bias": jnp.zeros(3)},
          "head": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}


def test_ones_marks_only_kernels():
  m = masks.ones(params())
  assert m["Dense_0"]["bias"] is None and m["BatchNorm_0"]["scale"] is None
  assert m["Dense_0"]["kernel"].dtype == jnp.bool_
  assert m["Dense_0"]["kernel"].shape == (2, 3) and bool(m["head"]["kernel"].all())
  kept, total = masks.count(m)
  assert int(kept) == total == 12


def test_apply_zeroes_pruned_and_passes_others():
  p = params()
  m = masks.ones(p)
  m["Dense_0"]["kernel"] = jnp.array([[True, False, True], [False, True, True]])
  out = masks.apply(p, m)
  np.testing.assert_array_equal(out["Dense_0"]["kernel"],
                                [[-2, 0, 0], [0, 2, 3]])
  np.testing.assert_array_equal(out["Dense_0"]["bias"], p["Dense_0"]["bias"])
  assert float(masks.density(m)) == pytest.approx(10 / 12)
  layer = masks.per_layer_density(m)
  assert set(layer) == {"Dense_0/kernel", "head/kernel"}
  assert float(layer["Dense_0/kernel"]) == pytest.approx(4 / 6)


def test_custom_rule_and_no_match_error():
  m = masks.ones(params(), r"^head/kernel$")
  assert m["Dense_0"]["kernel"] is None and m["head"]["kernel"] is not None
  with pytest.raises(ValueError, match="matches no parameter"):
    masks.ones(params(), r"nothing_like_this")


def test_select_by_path_not_ndim():
  sel = masks.select(params(), masks.DEFAULT_OUTPUT_LAYER)
  assert sel["head"]["kernel"] and not sel["Dense_0"]["kernel"]
  assert not sel["head"]["bias"]


def test_density_per_replica_under_vmap():
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), params())
  m = jax.vmap(masks.ones)(stacked)
  m["head"]["kernel"] = m["head"]["kernel"].at[1].set(False)
  d = jax.vmap(masks.density)(m)
  np.testing.assert_allclose(d, [1.0, 6 / 12])
  exact = masks.replica_densities(m)  # host float64 from integer counts
  assert exact.dtype == np.float64 and exact.tolist() == [1.0, 6 / 12]


def test_intersect():
  p = params()
  a, b = masks.ones(p), masks.ones(p)
  a["head"]["kernel"] = a["head"]["kernel"].at[0].set(False)
  b["head"]["kernel"] = b["head"]["kernel"].at[:, 0].set(False)
  c = masks.intersect(a, b)
  assert int(masks.count(c)[0]) == 12 - 2 - 3 + 1
