"""The patches lowering equals lax.conv_general_dilated (and nn.Conv)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket.models.conv import Conv


@pytest.mark.parametrize("shape,kernel,stride,groups", [
    ((2, 11, 3), (5,), 1, 1), ((2, 11, 3), (3,), 2, 1),
    ((2, 9, 7, 4), (3, 3), 1, 1), ((2, 9, 8, 4), (3, 3), 2, 1),
    ((2, 8, 8, 4), (1, 1), 2, 1), ((2, 9, 9, 4), (3, 3), 2, 4),
])
def test_patches_equals_lax_and_flax(shape, kernel, stride, groups):
  x = jax.random.normal(jax.random.key(0), shape)
  features = 4 if groups > 1 else 5
  mods = {impl: Conv(features, kernel, stride, feature_group_count=groups,
                     impl=impl) for impl in ("patches", "lax")}
  params = mods["lax"].init(jax.random.key(1), x)
  ref = nn.Conv(features, kernel, stride, padding="SAME",
                feature_group_count=groups)
  assert jax.tree.map(jnp.shape, ref.init(jax.random.key(1), x)) == \
      jax.tree.map(jnp.shape, params)
  want = ref.apply(params, x)
  for impl, mod in mods.items():
    np.testing.assert_allclose(mod.apply(params, x), want, rtol=1e-5,
                               atol=1e-5)
  # Gradients agree too.
  grads = [jax.grad(lambda p: (m.apply(p, x) ** 2).sum())(params)
           for m in mods.values()]
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
