"""Soft (trainable, multiplicative) weight masks over any model, for the
mask-finding stage of UGS (Chen et al., ICML 2021, "A unified lottery
ticket hypothesis for graph neural networks", Eq. 3-4).

:class:`SoftMask` wraps a model like :class:`~jaxticket.models.supermask.
Supermask` does (the same ``init``/``apply`` shape, so a ``Program`` takes
it), but the masks are real numbers trained *together with* the weights,
not top-k selections: ``init`` puts a ``kernel_mask`` leaf (ones, plus
uniform noise of relative size ``noise`` as UGS's ``all_one`` init) next to
every kernel matched by ``masked``; ``apply`` runs the body on ``kernel *
kernel_mask``. The soft edge mask needs no wrapper: it is the GNN's own
``edges`` leaf (:mod:`jaxticket.models.gnn`), trained in this stage.

:func:`l1_penalty` is the sparsity term ``s * ||m||_1`` for
``Parametrization(penalty=...)``; its gradient ``s * sign(m)`` is the
subgradient UGS's code adds to the masks' gradients before Adam.
Hard masks (the pruned positions) stay ordinary boolean masks on the
kernels and edges, applied by the platform's step.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import flax.linen as nn
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp

from jaxticket.core.masks import path_str

PyTree = Any

#: Name of the soft mask leaf placed next to each masked kernel.
MASK_LEAF = "kernel_mask"


@dataclasses.dataclass(frozen=True)
class SoftMask:
  """A model whose matched kernels are multiplied by trainable masks.

  Attributes:
    body: the network (any Flax module called as ``apply(variables, x,
      train=..., **kwargs)``).
    masked: regex over kernel paths that get a ``kernel_mask``.
    noise: the masks start at ``1 + U(-noise, noise)`` (UGS: 1e-5, which
      only breaks ties).
  """
  body: nn.Module
  masked: str = r"(^|/)kernel$"
  noise: float = 1e-5

  def init(self, rngs: jax.Array, x: jax.Array, train: bool = False,
           **kwargs) -> dict:
    # The body gets the key unchanged, so its weights are exactly the plain
    # model's with the same key: UGS retrains the ticket from the weights
    # its mask search started from.
    mask_key = jax.random.fold_in(rngs, 0x5E1F)
    variables = dict(self.body.init(rngs, x, train=train, **kwargs))
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    kernels = [p for p in flat if p[-1] == "kernel"
               and re.search(self.masked, "/".join(p))]
    if not kernels:
      raise ValueError(f"SoftMask: no kernel matches masked={self.masked!r};"
                       f" parameter paths: "
                       f"{sorted('/'.join(p) for p in flat)}.")
    for i, path in enumerate(kernels):
      flat[path[:-1] + (MASK_LEAF,)] = ones_with_noise(
          jax.random.fold_in(mask_key, i), flat[path].shape, self.noise)
    variables["params"] = traverse_util.unflatten_dict(flat)
    return variables

  def apply(self, variables: dict, x: jax.Array, train: bool = False,
            **kwargs) -> Any:
    variables = dict(variables)
    variables["params"] = effective_params(variables["params"])
    return self.body.apply(variables, x, train=train, **kwargs)


def ones_with_noise(key: jax.Array, shape: tuple[int, ...], noise: float
                    ) -> jax.Array:
  """``1 + U(-noise, noise)``: UGS's ``all_one`` soft-mask init."""
  return 1.0 + noise * jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)


def effective_params(params: PyTree) -> PyTree:
  """The body's params: every kernel with a ``kernel_mask`` sibling times
  it, the mask leaves removed."""
  flat = traverse_util.flatten_dict(dict(params))
  for path in [p for p in flat if p[-1] == MASK_LEAF]:
    m = flat.pop(path)
    kernel = path[:-1] + ("kernel",)
    flat[kernel] = flat[kernel] * m
  return traverse_util.unflatten_dict(flat)


def body_tree(tree: PyTree) -> PyTree:
  """``tree`` (params or a mask of the wrapped model) without its
  ``kernel_mask`` leaves: the body's structure."""
  flat = traverse_util.flatten_dict(dict(tree), keep_empty_nodes=True)
  return traverse_util.unflatten_dict(
      {p: v for p, v in flat.items() if p[-1] != MASK_LEAF})


def l1_penalty(coefficients: dict[str, float]) -> Callable[[PyTree],
                                                           jax.Array]:
  """``sum over leaves of coef(path) * sum |leaf|``, for every trained
  leaf whose path matches a regex of ``coefficients`` (the first match
  counts); None leaves (frozen) are skipped."""
  rules = [(re.compile(k), float(v)) for k, v in coefficients.items()]

  def penalty(trainable: PyTree) -> jax.Array:
    total = jnp.zeros((), jnp.float32)
    flat = jax.tree_util.tree_flatten_with_path(
        trainable, is_leaf=lambda x: x is None)[0]
    for path, leaf in flat:
      if leaf is None:
        continue
      name = path_str(path)
      for regex, coef in rules:
        if regex.search(name):
          total = total + coef * jnp.sum(jnp.abs(leaf))
          break
    return total

  return penalty


__all__ = ["SoftMask", "MASK_LEAF", "effective_params", "body_tree",
           "l1_penalty", "ones_with_noise"]
