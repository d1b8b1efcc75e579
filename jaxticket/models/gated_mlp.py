"""A shared MLP with neuron-wise task gates (task-incremental learning).

HAT (Serra et al. 2018, Sec. 2.2-2.4) and DSN (Gao et al., data-free
subnetworks) learn one gate per hidden unit and task over ONE shared
network: task t's units are ``a_t = sigmoid(s * e_t)`` of a trainable
logit ``e_t``, with the slope ``s`` annealed from 1/s_max to s_max over
each epoch's batches (HAT's Eq. 3; the code of both papers), and hard
``[e_t > 0]`` at test time. Weights that earlier tasks' units use are
protected: the gradient to ``W[i, j]`` of a layer is zeroed when input unit
``i`` and output unit ``j`` were both used by an earlier task (HAT Eq. 4
with hard cumulative masks, so the protection is exact), and a unit's bias
when the unit was used. New units may still read earlier units' outputs
(``W[i, j]`` with ``j`` new is trained). With SGD without weight decay and
a fresh optimizer per task, the protected weights are then bit-identical
after every later task: zero forgetting.

Parameters (paths): ``Layer_l/kernel``, ``Layer_l/bias``, ``gate_l`` [T, H]
(trained); ``used_l`` [H] (frozen: 1 where an earlier task uses the unit,
updated between tasks by :func:`absorb`), ``fixed_l`` [T, H] (frozen 0/1
gates of the ``fixed`` mode: random unit masks), ``task`` (frozen scalar:
the task the forward computes), ``head/kernel`` [H, T*C] (multi-head: task
t reads its own C columns, so no head is shared between tasks).

Modes: ``gated`` (learned gates, protection), ``fixed`` (frozen random
gates, protection: a random subnetwork per task), ``none`` (no gates, no
protection: plain fine-tuning of one net through the sequence).

With ``penalty`` the forward appends HAT's regularizer (Eq. 5: the
gates of units no earlier task uses, summed over layers and divided by
their number) as one extra output column, which
:class:`~jaxticket.tasks.Penalized` adds to the loss with weight lambda:
it keeps each task's subnetwork small so later tasks find free units.

Where we follow the code rather than the paper: HAT's gradient
compensation of the logits (``s_max / s * (cosh(clip(s e)) + 1) /
(cosh(e) + 1)``, clip at 50) and its clamp of the logits to +-6 after each
step (:func:`clamp_gates`); gates are hard 0/1 at test (HAT's code uses
``sigmoid(s_max e)``, which differs from it by < e^-400 off 0).
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxticket.core.masks import path_str

PyTree = Any

MODES = ("gated", "fixed", "none")
#: Trained leaves (the rest -- used_l, fixed_l, task -- are frozen).
TRAINABLE = r"(^|/)(kernel|bias|gate_\d+)$"
GATE_CLAMP = 6.0  # HAT's thres_emb
COSH_CLIP = 50.0  # HAT's thres_cosh


def slope(step: jax.Array, steps_per_epoch: int, smax: float) -> jax.Array:
  """HAT's annealed slope at optimizer ``step``: 1/s_max at each epoch's
  first batch, rising linearly to s_max at its last."""
  span = max(int(steps_per_epoch) - 1, 1)
  b = jnp.mod(step, steps_per_epoch).astype(jnp.float32)
  return 1.0 / smax + (smax - 1.0 / smax) * jnp.minimum(b / span, 1.0)


def compensated(e: jax.Array, s: jax.Array, smax: float) -> jax.Array:
  """``e`` in the forward; its gradient scaled by HAT's compensation."""
  c = smax / s * (jnp.cosh(jnp.clip(s * e, -COSH_CLIP, COSH_CLIP)) + 1.0) / (
      jnp.cosh(e) + 1.0)
  e0 = jax.lax.stop_gradient(e)
  return e0 + jax.lax.stop_gradient(c) * (e - e0)


def hard(e: jax.Array) -> jax.Array:
  """The test-time gate: 1 where ``sigmoid(s e) > 1/2`` for any s > 0."""
  return (e > 0).astype(jnp.float32)


def protected(w: jax.Array, frozen: jax.Array) -> jax.Array:
  """``w`` in the forward, with no gradient where ``frozen``."""
  return jnp.where(frozen, jax.lax.stop_gradient(w), w)


class GatedLayer(nn.Module):
  """Dense layer whose weights between used units get no gradient."""
  features: int

  @nn.compact
  def __call__(self, x, used_in, used_out, protect: bool):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if protect:
      kernel = protected(kernel, (used_in[:, None] * used_out[None, :]) > 0)
      bias = protected(bias, used_out > 0)
    return x @ kernel + bias


class GatedMLP(nn.Module):
  """ReLU MLP of ``widths`` with per-task unit gates and a multi-head
  output of ``tasks`` heads of ``classes`` outputs (module docstring)."""
  widths: tuple[int, ...]
  tasks: int
  classes: int
  mode: str = "gated"
  smax: float = 400.0
  steps_per_epoch: int = 1
  #: Append HAT's mask regularizer as one extra output column (for
  #: :class:`~jaxticket.tasks.Penalized`); gated mode only.
  penalty: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False, step=None):
    x = x.reshape(x.shape[0], -1)
    task = self.param("task", nn.initializers.zeros, ())
    t = task.astype(jnp.int32)
    protect = self.mode != "none"
    used_in = jnp.ones((x.shape[-1],), jnp.float32)
    reg, count = jnp.zeros(()), jnp.zeros(())
    for l, h in enumerate(self.widths):
      used = self.param(f"used_{l}", nn.initializers.zeros, (h,))
      x = nn.relu(GatedLayer(h, name=f"Layer_{l}")(x, used_in, used,
                                                    protect))
      if self.mode == "gated":
        e = self.param(f"gate_{l}", nn.initializers.normal(1.0),
                       (self.tasks, h))[t]
        if train and step is not None:
          s = slope(step, self.steps_per_epoch, self.smax)
          a = nn.sigmoid(s * compensated(e, s, self.smax))
        else:
          a = hard(e)
        x = x * a
        reg = reg + jnp.sum(a * (1.0 - used))
        count = count + jnp.sum(1.0 - used)
      elif self.mode == "fixed":
        x = x * self.param(f"fixed_{l}", nn.initializers.ones,
                           (self.tasks, h))[t]
      used_in = used
    logits = nn.Dense(self.tasks * self.classes, name="head")(x)
    logits = jax.lax.dynamic_slice_in_dim(logits, t * self.classes,
                                          self.classes, axis=-1)
    if self.penalty and self.mode == "gated":
      # HAT's Eq. 5: the new task's gates on units no earlier task uses,
      # normalized by the number of such units.
      reg = reg / jnp.maximum(count, 1.0)
      logits = jnp.concatenate(
          [logits, jnp.broadcast_to(reg, (logits.shape[0], 1))], -1)
    return logits


def task_gates(params: PyTree, mode: str, t: int, layers: int
               ) -> list[jax.Array]:
  """Task ``t``'s hard 0/1 unit gates per layer (one replica)."""
  if mode == "gated":
    return [hard(params[f"gate_{l}"][t]) for l in range(layers)]
  if mode == "fixed":
    return [params[f"fixed_{l}"][t] for l in range(layers)]
  return [jnp.ones_like(params[f"used_{l}"]) for l in range(layers)]


def absorb(params: PyTree, mode: str, t: int, layers: int) -> PyTree:
  """``params`` with task ``t``'s units added to the used (protected)
  units, after training task t (one replica)."""
  out = dict(params)
  for l, g in enumerate(task_gates(params, mode, t, layers)):
    out[f"used_{l}"] = jnp.maximum(params[f"used_{l}"], g)
  return out


def clamp_gates(trainable: PyTree) -> PyTree:
  """HAT's clamp of the gate logits to +-6 after each step (a projection
  for :class:`~jaxticket.core.parametrization.Parametrization`)."""
  regex = re.compile(r"(^|/)gate_\d+$")
  return jax.tree_util.tree_map_with_path(
      lambda p, x: jnp.clip(x, -GATE_CLAMP, GATE_CLAMP)
      if x is not None and regex.search(path_str(p)) else x, trainable,
      is_leaf=lambda x: x is None)


def protected_weights(params: PyTree, layers: int) -> PyTree:
  """Bool tree over the hidden layers' kernels/biases: which entries the
  used units protect (the ones that must stay bit-identical)."""
  out, used_in = {}, None
  for l in range(layers):
    used = params[f"used_{l}"] > 0
    k = params[f"Layer_{l}"]["kernel"]
    ui = jnp.ones(k.shape[0], bool) if used_in is None else used_in
    out[f"Layer_{l}"] = {"kernel": ui[:, None] & used[None, :],
                         "bias": used}
    used_in = used
  return out


__all__ = ["GatedMLP", "GatedLayer", "MODES", "TRAINABLE", "slope",
           "compensated", "hard", "protected", "task_gates", "absorb",
           "clamp_gates", "protected_weights"]
