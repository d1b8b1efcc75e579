"""Supermasks: a random network whose weights stay frozen and whose
subnetwork is chosen by trainable *scores* (Ramanujan et al., CVPR 2020,
"What's hidden in a randomly weighted neural network?", edge-popup).

:class:`Supermask` turns ANY registry model (the *body*) into a supermask
model without touching its code: ``init`` re-draws every scored kernel
(signed Kaiming constant or Kaiming normal, Sec. 4 of the paper) and puts a
``scores`` leaf next to it; ``apply`` turns the scores into 0/1 masks with a
:class:`MaskRule` and runs the body on ``kernel * mask``. Trained with
``core.parametrization.Parametrization.scores()`` only the ``scores`` leaves
move (bit-identical weights; weight decay reaches the scores only), through
the one training step of :mod:`jaxticket.core.step`.

The fraction of weights (or units) KEPT is the frozen leaf ``params["keep"]``
(edge-popup's ``prune_rate`` / the paper's k%, which is the fraction kept):
a replica axis can hold seeds x k in one program, since top-k with a traced
k is data, not shape.

Biases and BatchNorm scale/offset stay at their init (0 and 1) and frozen,
which is exactly BatchNorm without affine parameters and no bias, as in the
authors' code (allenai/hidden-networks: ``NonAffineBatchNorm``,
``bias=False``).

A mask rule is the pluggable part (one object, see :class:`MaskRule`):

- :class:`LayerTopK` (``layerwise``): keep the top-k |scores| of each layer
  (the paper and its code).
- :class:`GlobalTopK` (``global``): keep the top-k |scores| of all scored
  layers together.
- :class:`UnitTopK` (``units``): one score per output unit / filter /
  channel (kernel's last axis); keep the top-k units of each layer, the
  structured strong tickets of da Cunha, d'Amore & Natale. Where the body
  is a chain from a unit to the next kernel (MLPs, plain conv nets;
  :func:`unit_links` finds and verifies it), the unit's mask multiplies its
  *outgoing* weights (the next kernel's input rows) instead of its incoming
  ones: the same function, but a dropped unit still computes its
  activation, so its score gets a gradient (masking the incoming weights
  makes its pre-activation exactly 0, where the ReLU's derivative is 0: a
  dropped unit's score would never move again).

Every rule returns exact 0/1 masks in the forward pass and passes the
gradient straight through to the scores (``hard + a - stop_gradient(a)``
is exactly ``hard``: ``a - a`` is 0 in IEEE arithmetic).

A new rule is one more class with ``score_shape``, ``init_scores``,
``masks`` and ``project``; :func:`projection` hands ``project`` to
``Parametrization(project=...)``, which the step applies to the trained
leaves after every update. GEM-MINER (Sreenivasan et al. 2022: scores p in
[0, 1] from U[0, 1], mask = [p > 0.5] straight-through to p, p clipped to
[0, 1] after each step, an L2 penalty on p as weight decay 2 lambda, and
iterative freezing as a mask updater over the scores) is
:mod:`jaxticket.models.gem_miner`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Protocol, Sequence

import flax.linen as nn
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import check_choice

PyTree = Any
Shape = tuple[int, ...]

#: Frozen-weight initializations of the paper (Sec. 4): ``signed_constant``
#: = sign(w) * sqrt(2 / fan_in) (best in their Fig. 5), ``kaiming_normal`` =
#: N(0, 2 / fan_in).
WEIGHT_INITS = ("signed_constant", "kaiming_normal")


class MaskRule(Protocol):
  """Turns the scores of all scored layers into 0/1 masks.

  Written for ONE replica (the training loop vmaps it). ``masks`` gets the
  scores of every scored kernel in a fixed order and the fraction to keep
  (a traced scalar), and returns one mask per score leaf (shaped like it;
  :class:`Supermask` broadcasts it against the kernel), with exact 0/1
  values forward and a straight-through gradient backward.
  """
  name: str

  def score_shape(self, kernel_shape: Shape) -> Shape: ...

  def init_scores(self, key: jax.Array, kernel_shape: Shape) -> jax.Array: ...

  def masks(self, scores: Sequence[jax.Array], keep: jax.Array
            ) -> list[jax.Array]: ...

  def project(self, scores: jax.Array) -> jax.Array: ...


def fan_in(kernel_shape: Shape) -> int:
  """Inputs per output unit: all axes but the last (Dense (in, out); Conv
  (*kernel, in // groups, out)), as PyTorch's ``fan_in`` mode."""
  return int(np.prod(kernel_shape[:-1]))


def kept_count(n: int, keep: float) -> int:
  """How many of ``n`` entries a rule keeps at fraction ``keep``:
  round(keep * n) in float32, the arithmetic the device does (edge-popup's
  code keeps n - floor((1 - k) n), at most one more)."""
  return int(np.round(np.float32(keep) * np.float32(n)))


def straight_through(a: jax.Array, hard: jax.Array) -> jax.Array:
  """``hard`` forward (exactly), identity gradient to ``a`` backward."""
  return hard.astype(a.dtype) + (a - jax.lax.stop_gradient(a))


def top_fraction(a: jax.Array, keep: jax.Array) -> jax.Array:
  """Bool array shaped like ``a``: its ``round(keep * a.size)`` largest
  entries. Ties: the lower flattened index is dropped first (as a stable
  ascending sort would, and as :mod:`jaxticket.pruning.allocators` does);
  found without a sort by :func:`jaxticket.core.masks.keep_largest`."""
  n = a.size
  k = jnp.round(jnp.asarray(keep, jnp.float32) * jnp.float32(n)).astype(
      jnp.int32)
  return masks_lib.keep_largest(a.reshape(-1), None, k).reshape(a.shape)


def kaiming_uniform_scores(key: jax.Array, shape: Shape, fan: int
                           ) -> jax.Array:
  """U(-1/sqrt(fan), 1/sqrt(fan)): PyTorch's ``kaiming_uniform_(a=sqrt(5))``,
  the scores' init in the authors' code."""
  bound = 1.0 / math.sqrt(max(fan, 1))
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


@dataclasses.dataclass(frozen=True)
class LayerTopK:
  """Edge-popup: per layer, keep the top-k |scores| (one score per weight)."""
  name: str = "layerwise"

  def score_shape(self, kernel_shape: Shape) -> Shape:
    return tuple(kernel_shape)

  def init_scores(self, key, kernel_shape):
    return kaiming_uniform_scores(key, self.score_shape(kernel_shape),
                                  fan_in(kernel_shape))

  def masks(self, scores, keep):
    out = []
    for s in scores:
      a = jnp.abs(s)
      out.append(straight_through(a, top_fraction(a, keep)))
    return out

  def project(self, scores):
    return scores


@dataclasses.dataclass(frozen=True)
class GlobalTopK(LayerTopK):
  """Keep the top-k |scores| of all scored layers ranked together."""
  name: str = "global"

  def masks(self, scores, keep):
    a = [jnp.abs(s) for s in scores]
    hard = top_fraction(jnp.concatenate([x.reshape(-1) for x in a]), keep)
    out, start = [], 0
    for x in a:
      piece = hard[start:start + x.size].reshape(x.shape)
      out.append(straight_through(x, piece))
      start += x.size
    return out


@dataclasses.dataclass(frozen=True)
class UnitTopK(LayerTopK):
  """Structured: one score per output unit / filter (the kernel's last
  axis); per layer keep the top-k units. The straight-through gradient of a
  unit's score is the sum over the weights its mask multiplies of
  dL/d(w_eff) * w (the chain rule through the broadcast): over its outgoing
  weights where :class:`Supermask` has a link for it (then it equals
  sum over the batch of h_j * dL/dh_j, h_j the unit's activation, also for
  a dropped unit), else over its incoming weights (0 for a dropped ReLU
  unit, see the module docstring).

  Scores start as for edge-popup's weights, U(+-1/sqrt(fan_in)); only
  their order matters for the mask, and a unit's gradient sums fan_in (or
  fan_out) weights' terms, so the scale relative to the learning rate
  differs from the per-weight rule's (MNIST-1D: accuracy flat for score
  LRs 0.02-1.0, see the README)."""
  name: str = "units"

  def score_shape(self, kernel_shape: Shape) -> Shape:
    return (int(kernel_shape[-1]),)


RULES: dict[str, Callable[[], MaskRule]] = {
    "layerwise": LayerTopK, "global": GlobalTopK, "units": UnitTopK}


def make_rule(name: str) -> MaskRule:
  """The rule registered as ``name`` (a one-line error names the valid
  ones)."""
  check_choice("strong.rules", name, RULES, "mask rule")
  return RULES[name]()


def frozen_kernel(key: jax.Array, shape: Shape, how: str) -> jax.Array:
  """A frozen random kernel: signed Kaiming constant or Kaiming normal."""
  std = math.sqrt(2.0 / fan_in(shape))  # gain sqrt(2) for ReLU, fan_in mode
  w = jax.random.normal(key, shape, jnp.float32)
  if how == "signed_constant":
    return jnp.where(w >= 0, std, -std).astype(jnp.float32)
  if how == "kaiming_normal":
    return w * std
  raise ValueError(f"Unknown weight init {how!r}; choose one of "
                   f"{', '.join(WEIGHT_INITS)}.")


@dataclasses.dataclass(frozen=True)
class Supermask:
  """A registry model with frozen weights and trainable scores.

  Has the ``init``/``apply`` of a Flax module, so a
  :class:`~jaxticket.core.step.Program` takes it as its model.

  Attributes:
    body: the network (any module of :mod:`jaxticket.models`).
    rule: turns scores into masks.
    keep: the fraction kept written into ``params["keep"]`` at init (each
      replica may overwrite its own).
    weight_init: one of :data:`WEIGHT_INITS`.
    scored: regex of the kernel paths that get scores (the rest stay dense).
    skip: regex of kernels left unscored even if ``scored`` matches (the
      output layer for :class:`UnitTopK`: dropping its units drops classes).
    scale_fan: multiply each kernel a mask applies to by 1/sqrt(keep)
      (the paper's "scaled" inits, Sec. 4: std sqrt(2 / (k fan_in)) for a
      layer that keeps the fraction k of its inputs). The authors' code
      (utils/builder.py) multiplies the fan by ``1 - prune_rate`` while its
      ``GetSubnet`` keeps the fraction ``prune_rate``: the two agree only
      at k = 50%; we follow the paper. A unit mask applied to the outgoing
      weights scales the next kernel (whose inputs it removes); applied to
      the incoming ones (no link) it scales the unit's own kernel, which
      ReLU's homogeneity carries to the next layer (not through a
      BatchNorm, which undoes it).
    links: ``(unit kernel path, next kernel path, repeat)`` triples: the
      unit mask of the first kernel multiplies the input rows of the second
      (each unit's row repeated ``repeat`` times, for a Dense layer after a
      channel-last flatten). Found by :func:`unit_links`; empty = every
      mask on its own kernel.
  """
  body: nn.Module
  rule: MaskRule
  keep: float = 0.5
  weight_init: str = "signed_constant"
  scored: str = r"(^|/)kernel$"
  skip: str = ""
  scale_fan: bool = False
  links: tuple[tuple[str, str, int], ...] = ()

  def _is_scored(self, path: tuple) -> bool:
    name = "/".join(path)
    return (path[-1] == "kernel" and bool(re.search(self.scored, name))
            and not (self.skip and re.search(self.skip, name)))

  def init(self, rngs: jax.Array, x: jax.Array, train: bool = False,
           **kwargs) -> dict:
    """The body's variables with re-drawn frozen kernels, ``scores`` next to
    each scored kernel and the ``keep`` leaf."""
    body_key, weight_key, score_key = jax.random.split(rngs, 3)
    variables = dict(self.body.init(body_key, x, train=train, **kwargs))
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    scored = [p for p in flat if self._is_scored(p)]
    if not scored:
      raise ValueError(
          f"Supermask: no kernel matches scored={self.scored!r} (skip="
          f"{self.skip!r}); parameter paths: "
          f"{sorted('/'.join(p) for p in flat)}.")
    for i, path in enumerate(scored):
      shape = tuple(flat[path].shape)
      flat[path] = frozen_kernel(jax.random.fold_in(weight_key, i), shape,
                                 self.weight_init)
      flat[path[:-1] + ("scores",)] = self.rule.init_scores(
          jax.random.fold_in(score_key, i), shape)
    flat[("keep",)] = jnp.asarray(self.keep, jnp.float32)
    variables["params"] = traverse_util.unflatten_dict(flat)
    return variables

  def effective_params(self, params: PyTree) -> PyTree:
    """The body's params: every scored kernel times its mask (scores and
    ``keep`` removed)."""
    flat = traverse_util.flatten_dict(dict(params))
    keep = flat.pop(("keep",))
    paths = [p[:-1] + ("kernel",) for p in flat if p[-1] == "scores"]
    scores = [flat.pop(p[:-1] + ("scores",)) for p in paths]
    masks = self.rule.masks(scores, keep)
    scale = jax.lax.rsqrt(keep) if self.scale_fan else None
    links = {tuple(p.split("/")): (tuple(c.split("/")), r)
             for p, c, r in self.links}
    for path, m in zip(paths, masks):
      if path in links:  # a unit's outgoing weights: rows of the next kernel
        path, repeat = links[path]
        m = jnp.tile(m, repeat)[:, None]
      w = flat[path] * m
      flat[path] = w if scale is None else w * scale
    return traverse_util.unflatten_dict(flat)

  def apply(self, variables: dict, x: jax.Array, train: bool = False,
            **kwargs) -> Any:
    """The body applied with masked kernels (``mutable`` etc. pass on)."""
    variables = dict(variables)
    variables["params"] = self.effective_params(variables["params"])
    return self.body.apply(variables, x, train=train, **kwargs)


def hard_masks(model: Supermask, params: PyTree) -> dict[str, jax.Array]:
  """``{kernel path: bool mask}`` of one replica's subnetwork (scored
  kernels only), broadcast to the kernel's shape: for unit scores, which
  units are kept (all weights into a dropped unit count as unused, also
  where the mask is applied to its outgoing weights)."""
  flat = traverse_util.flatten_dict(dict(params))
  paths = [p[:-1] + ("kernel",) for p in flat if p[-1] == "scores"]
  masks = model.rule.masks([flat[p[:-1] + ("scores",)] for p in paths],
                           flat[("keep",)])
  return {"/".join(p): jnp.broadcast_to(m, flat[p].shape) > 0.5
          for p, m in zip(paths, masks)}


def unit_links(model: Supermask, x: jax.Array, seed: int = 0
               ) -> tuple[tuple[str, str, int], ...]:
  """The ``links`` of :class:`Supermask` for ``model``'s unit scores: for
  every scored kernel with one score per unit (the kernel's last axis) and
  the kernel created next (forward order of an un-jitted init), a link when
  the next kernel's input rows are the units (``repeat`` rows each, a
  channel-last flatten) AND the body computes exactly the same function
  with a random half of the units zeroed either way (on input ``x``,
  inference mode). A unit that also feeds a skip connection, a depthwise
  layer or anything but the next kernel fails the check and keeps its mask
  on its incoming weights."""
  variables = model.body.init(jax.random.key(seed), x)
  flat = traverse_util.flatten_dict(dict(variables["params"]))
  kernels = [p for p in flat if p[-1] == "kernel"]  # forward order
  rng = np.random.default_rng(seed)
  links = []
  for p, c in zip(kernels, kernels[1:]):
    shape, nxt = tuple(flat[p].shape), tuple(flat[c].shape)
    units = shape[-1]
    if (not model._is_scored(p) or len(nxt) < 2 or nxt[-2] % units
        or tuple(model.rule.score_shape(shape)) != (units,)):
      continue
    repeat = nxt[-2] // units
    m = (rng.permutation(units) < units // 2).astype(np.float32)
    dropped_in = {**flat, p: flat[p] * m}
    dropped_out = {**flat, c: flat[c] * np.tile(m, repeat)[:, None]}
    outs = [np.asarray(model.body.apply(
        dict(variables, params=traverse_util.unflatten_dict(f)), x))
            for f in (dropped_in, dropped_out)]
    if np.allclose(outs[0], outs[1], rtol=1e-5,
                   atol=1e-6 * float(np.abs(outs[0]).max() + 1e-30)):
      links.append(("/".join(p), "/".join(c), int(repeat)))
  return tuple(links)


def with_unit_links(model: Supermask, input_shape: tuple[int, ...]
                    ) -> Supermask:
  """``model`` with its unit masks on the outgoing weights wherever
  :func:`unit_links` verifies a chain (a no-op for per-weight rules)."""
  x = jax.random.normal(jax.random.key(1), (2, *input_shape))
  return dataclasses.replace(model, links=unit_links(model, x))


def with_keep(params: PyTree, keep: Any) -> PyTree:
  """``params`` (one replica, or stacked with ``keep`` one value per
  replica) with the fraction kept replaced."""
  return {**params, "keep": jnp.asarray(keep, jnp.float32)}


def projection(rule: MaskRule) -> Callable[[PyTree], PyTree]:
  """The trained-leaf projection for ``Parametrization(project=...)``:
  ``rule.project`` on every ``scores`` leaf (identity for the top-k rules)."""
  def project(trainable: PyTree) -> PyTree:
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x if x is None or getattr(p[-1], "key", None) != "scores"
        else rule.project(x), trainable, is_leaf=lambda x: x is None)
  return project


__all__ = ["Supermask", "MaskRule", "LayerTopK", "GlobalTopK", "UnitTopK",
           "RULES", "WEIGHT_INITS", "make_rule", "kept_count", "top_fraction",
           "straight_through", "frozen_kernel", "hard_masks", "projection",
           "with_keep", "unit_links", "with_unit_links", "fan_in"]
