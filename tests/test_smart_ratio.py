"""Su et al.'s smart ratio (NeurIPS 2020) against a NumPy re-implementation
written here from the rule's description (JingtongSu/sanity-checking-pruning,
pruner/SmartRatio.py), on LeNet, ResNet-20 and VGG-16 shape lists; hybrid
tickets; the sanity check's smart-ratio control on the corrected rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import models
from jaxticket.core import masks
from jaxticket.core.checks import ConfigError
from jaxticket.experiments.pai import pai
from jaxticket.pruning import controls, ratios

LENET = [(784, 300), (300, 100), (100, 10)]


def resnet20_shapes(w=1.0):
  c = lambda n: max(1, int(round(n * w)))
  conv = lambda cin, cout, k=3: (k, k, cin, cout)
  out = [conv(3, c(16))]
  cin = c(16)
  for width in (c(16), c(32), c(64)):
    for block in range(3):
      out += [conv(cin, width), conv(width, width)]
      if cin != width:
        out.append(conv(cin, width, 1))  # projection shortcut
      cin = width
  return out + [(c(64), 10)]


def vgg16_shapes(w=1.0):
  plan = [max(1, int(round(n * w))) for n in
          [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]]
  cins = [3] + plan[:-1]
  return [(3, 3, a, b) for a, b in zip(cins, plan)] + [(plan[-1], 10)]


def reference(shapes, density, vgg, keep_last=0.3):
  """The rule in words: L layers (the last linear one included); layer l
  has raw ratio (L-l+1)^2 + (L-l+1), over l^2 for VGG; the last layer
  keeps a fixed 30% out of the budget; one scale factor spends the rest
  (per-layer terms truncated to integers as the code does); in order, a
  ratio above 1 is capped and its excess (truncated) handed to the next
  layers; counts are truncated."""
  n = np.array([np.prod(s) for s in shapes], np.int64)
  L = len(n)
  l = np.arange(1, L + 1)
  raw = ((L - l + 1) ** 2 + (L - l + 1)).astype(np.float64)
  if vgg:
    raw = raw / l ** 2
  fixed = int(n[-1] * keep_last)
  budget = int(n.sum() * density) - fixed
  denominator = np.sum(np.trunc(n[:-1] * raw[:-1]))
  r = raw[:-1] * budget / denominator
  carried = 0
  for i in range(L - 1):
    if r[i] >= 1:  # cap, remember the excess
      carried += int((r[i] - 1) * n[i])
      r[i] = 1.0
    elif carried:  # absorb what fits here
      room = int((1 - r[i]) * n[i])
      take = min(room, carried)
      r[i] = 1.0 if take == room and room < carried else r[i] + carried / n[i]
      carried -= take if room < carried else carried
    if carried == 0:
      break
  counts = [int(n[i]) if r[i] >= 1 else int(r[i] * n[i]) for i in range(L - 1)]
  return counts + [int(keep_last * n[-1])]


@pytest.mark.parametrize("name,shapes", [("lenet", LENET),
                                         ("resnet20", resnet20_shapes()),
                                         ("vgg16", vgg16_shapes())])
@pytest.mark.parametrize("variant", ["resnet", "vgg"])
@pytest.mark.parametrize("density", [0.9, 0.5, 0.2, 0.1, 0.05, 0.02])
def test_smart_ratio_equals_numpy_reimplementation(name, shapes, variant,
                                                   density):
  sizes = [int(np.prod(s)) for s in shapes]
  try:
    want = reference(shapes, density, variant == "vgg")
  except Exception:
    want = None
  if int(sum(sizes) * density) <= int(0.3 * sizes[-1]):
    with pytest.raises(ConfigError, match="too small for the smart ratio"):
      ratios.smart_ratio_counts(sizes, density, variant)
    return
  got = ratios.smart_ratio_counts(sizes, density, variant)
  assert got == want
  assert got[-1] == int(0.3 * sizes[-1])  # the fixed 30%
  assert all(0 < c <= n for c, n in zip(got, sizes))
  budget = int(density * sum(sizes))
  assert abs(sum(got) - budget) <= 2 * len(sizes)  # truncations only
  dens = ratios.smart_ratio(shapes, density, variant)
  np.testing.assert_allclose(dens, np.array(got) / sizes)


def test_shape_lists_are_our_models_in_forward_order():
  # kernel shapes do not depend on the resolution (global pooling)
  for name, shape, want in (("resnet20", (8, 8, 3), resnet20_shapes(0.25)),
                            ("vgg16", (16, 16, 3), vgg16_shapes(0.125))):
    width = 0.25 if name == "resnet20" else 0.125
    model = models.build(name, 10, width=width, input_shape=shape)
    params = jax.eval_shape(lambda: model.init(
        jax.random.key(0), jnp.zeros((1, *shape)), train=False))["params"]
    flat = dict(zip(jax.tree.leaves(masks.leaf_paths(params)),
                    jax.tree.leaves(params)))
    order = [p for p in pai.creation_order(model, shape)
             if p.endswith("kernel")]
    assert order[0].startswith("ConvBN_0/") and order[-1] == "head/kernel"
    assert [tuple(flat[p].shape) for p in order] == want
  deep = models.build("resnet32", 10, width=0.25, input_shape=(8, 8, 3))
  order = pai.creation_order(deep, (8, 8, 3))  # not jax.tree's sorted order
  assert order.index("BasicBlock_2/ConvBN_0/Conv_0/kernel") < order.index(
      "BasicBlock_10/ConvBN_0/Conv_0/kernel")


def test_carry_caps_early_layers_at_high_density():
  shapes = resnet20_shapes()
  got = ratios.smart_ratio(shapes, 0.9, "resnet")
  assert got[0] == 1.0 and got[1] == 1.0  # capped, excess carried on
  assert max(got) <= 1.0
  # the raw ratio decreases with depth, so densities do too (before the head)
  assert all(a >= b - 1e-12 for a, b in zip(got[:-1], got[1:-1]))


def test_resnet20_last_conv_at_90_percent_sparsity():
  """The quadratic starts at the first layer (l = 1 has (L)^2 + L); the
  last conv (l = L-1) has raw ratio 2^2 + 2 = 6 against the stem's
  22^2 + 22 = 506."""
  shapes = resnet20_shapes()
  d = ratios.smart_ratio(shapes, 0.1, "resnet")
  assert d[-2] / d[0] == pytest.approx(6 / 506, rel=1e-3)


def test_variant_follows_the_architecture_and_vgg_divides_by_l_squared():
  assert ratios.smart_ratio_variant("resnet32") == "resnet"
  assert ratios.smart_ratio_variant("vgg19") == "vgg"
  assert ratios.smart_ratio_variant("lenet_300_100") == "vgg"
  shapes = vgg16_shapes()
  d = ratios.smart_ratio(shapes, 0.05, "vgg")
  L = len(shapes)
  raw = lambda l: ((L - l + 1) ** 2 + (L - l + 1)) / l ** 2
  assert d[:4] == [1.0] * 4  # capped; layer 5 absorbs the carried excess
  # the untouched layers keep the raw ratios' proportions (up to truncation)
  for l in range(7, L):
    assert d[l - 1] / d[5] == pytest.approx(raw(l) / raw(6), rel=2e-2)
  with pytest.raises(ConfigError, match="smart_ratio.variant"):
    ratios.smart_ratio_counts([10, 10], 0.5, "plain")


def test_counts_helper_and_rules_table():
  sizes = [int(np.prod(s)) for s in LENET]
  assert ratios.counts("smart", LENET, 0.1, variant="vgg") == \
      ratios.smart_ratio_counts(sizes, 0.1, "vgg")
  erk = ratios.counts("erk", LENET, 0.1)
  assert sum(erk) == round(0.1 * sum(sizes))
  assert "smart" in ratios.RULES


def test_hybrid_keeps_largest_init_magnitudes_per_layer():
  rng = np.random.default_rng(0)
  p = {"a": {"kernel": rng.normal(size=(20, 10)).astype(np.float32),
             "bias": np.zeros(10, np.float32)},
       "head": {"kernel": rng.normal(size=(10, 4)).astype(np.float32)}}
  like = masks.ones(p)
  got = controls.hybrid(p, like, [jnp.int32(30), jnp.int32(12)])
  for name, c in (("a", 30), ("head", 12)):
    w = np.abs(p[name]["kernel"]).ravel()
    keep = np.zeros(w.size, bool)
    keep[np.argsort(-w)[:c]] = True
    np.testing.assert_array_equal(np.asarray(got[name]["kernel"]).ravel(),
                                  keep)
  assert got["a"]["bias"] is None
  # vmappable with per-replica counts
  stacked = jax.tree.map(lambda x: jnp.stack([x, -x]), p)
  out = jax.vmap(lambda q, c: controls.hybrid(q, like, [c, jnp.int32(5)]))(
      stacked, jnp.array([3, 7]))
  np.testing.assert_array_equal(out["a"]["kernel"].sum((1, 2)), [3, 7])


def test_controls_delegate_to_the_corrected_rule():
  sizes = [int(np.prod(s)) for s in resnet20_shapes()]
  assert controls.smart_ratio_counts(sizes, 0.1) == \
      ratios.smart_ratio_counts(sizes, 0.1, "resnet")
  paths = [f"l{i}/kernel" for i in range(len(sizes) - 1)] + ["head/kernel"]
  assert controls.smart_ratio_counts_for(
      paths, sizes, 0.1, "resnet20", r"(^|/)head/kernel$") == \
      ratios.smart_ratio_counts(sizes, 0.1, "resnet", last_linear=True)
  # no output layer among the prunable leaves: no fixed 30%
  assert controls.smart_ratio_counts_for(
      paths[:-1], sizes[:-1], 0.1, "resnet20", r"(^|/)head/kernel$") == \
      ratios.smart_ratio_counts(sizes[:-1], 0.1, "resnet", last_linear=False)
