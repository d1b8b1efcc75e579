import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import models
from jaxticket.core import masks

IMAGE = (32, 32, 3)
SIGNAL = (40, 1)


def expected_lenet_weights(width=1.0):
  h1, h2 = round(300 * width), round(100 * width)
  return 40 * h1 + h1 * h2 + h2 * 10


# One cheap member per family runs by default; the other members (the same
# code at other depths / widths / switches) run in the slow step.
SLOW = pytest.mark.slow


@pytest.mark.parametrize("name,shape,kw", [
    ("lenet_300_100", SIGNAL, {}), ("mlp", SIGNAL, {"depth": 3}),
    ("cnn1d", SIGNAL, {}), ("resnet1d", SIGNAL, {}),
    pytest.param("resnet1d", SIGNAL, {"residual": False}, marks=SLOW),
    ("conv2", IMAGE, {}),
    pytest.param("conv4", IMAGE, {}, marks=SLOW),
    pytest.param("conv6", IMAGE, {}, marks=SLOW),
    pytest.param("vgg11", IMAGE, {}, marks=SLOW),  # ~20 s alone
    pytest.param("vgg16", IMAGE, {}, marks=SLOW),
    pytest.param("mobilenet_v1", IMAGE, {}, marks=SLOW),  # ~40 s
    pytest.param("resnet18", IMAGE, {}, marks=SLOW),
    pytest.param("resnet20", IMAGE, {}, marks=SLOW),  # resnet1d covers residual blocks
    pytest.param("resnet20", IMAGE, {"residual": False}, marks=SLOW),
    pytest.param("resnet32", IMAGE, {}, marks=SLOW),
    pytest.param("resnet56", IMAGE, {}, marks=SLOW),
])
def test_build_forward_vmapped_with_mask(name, shape, kw):
  model = models.build(name, 10, width=0.125, input_shape=shape, **kw)
  keys = jax.random.split(jax.random.key(0), 2)
  x = jnp.ones((3,) + shape)
  variables = jax.vmap(lambda k: model.init(k, x, train=False))(keys)
  params = variables["params"]
  mask = jax.vmap(masks.ones)(params)
  # Prune half of every kernel of replica 1 only.
  mask = jax.tree.map(lambda m: m.at[1].set(
      jnp.arange(m[1].size).reshape(m[1].shape) % 2 == 0), mask)

  def forward(p, bs, m):
    v = {"params": masks.apply(p, m)}
    if bs is not None:
      v["batch_stats"] = bs
      out, _ = model.apply(v, x, train=True, mutable=["batch_stats"])
      return out
    return model.apply(v, x, train=True)

  logits = jax.vmap(forward)(params, variables.get("batch_stats"), mask)
  assert logits.shape == (2, 3, 10)
  assert np.isfinite(np.asarray(logits)).all()
  # The prunable leaves are exactly the kernels, the classifier is "head".
  paths = jax.tree.leaves(masks.leaf_paths(params))
  kernels = [p for p in paths if p.endswith("kernel")]
  assert len(masks.prunable_leaves(mask)) == len(kernels)
  assert any(p == "head/kernel" for p in paths)
  assert ("batch_stats" in variables) == (
      name not in ("lenet_300_100", "mlp", "cnn1d", "conv2", "conv4", "conv6"))


def test_lenet_prunable_count_is_exact():
  for width in (1.0, 0.5):
    model = models.build("lenet_300_100", 10, width=width)
    params = model.init(jax.random.key(0), jnp.ones((1, 40, 1)))["params"]
    assert masks.count(masks.ones(params))[1] == expected_lenet_weights(width)


@pytest.mark.slow  # ~10 s or more of compiling
def test_resnet20_count_and_residual_switch():
  def count(**kw):
    m = models.build("resnet20", 10, input_shape=IMAGE, **kw)
    p = m.init(jax.random.key(0), jnp.ones((1,) + IMAGE))["params"]
    return masks.count(masks.ones(p))[1]
  # He et al. (2016) ResNet-20: 3x3 convs 16-32-64, 3 blocks per stage, with
  # 1x1 projection shortcuts at the two stage transitions (our option B).
  convs = 3 * 3 * 3 * 16 + 6 * 9 * 16 * 16
  convs += 9 * 16 * 32 + 5 * 9 * 32 * 32 + 16 * 32
  convs += 9 * 32 * 64 + 5 * 9 * 64 * 64 + 32 * 64
  assert count() == convs + 64 * 10
  assert count(residual=False) == convs - 16 * 32 - 32 * 64 + 64 * 10
  assert count(width=2.0) > 3.9 * count() - 1000


def test_bad_names_and_shapes():
  with pytest.raises(ValueError, match="Did you mean 'resnet20'"):
    models.build("rsenet20", 10)
  with pytest.raises(ValueError, match="needs 2-D inputs"):
    models.build("resnet20", 10, input_shape=SIGNAL)
  with pytest.raises(ValueError, match="6n\\+2"):
    models.build("resnet20", 10, depth=21)
