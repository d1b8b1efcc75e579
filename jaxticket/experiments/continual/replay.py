"""DSN's data-free replay for backward transfer (Gao et al., NeurIPS 2023,
"Enhancing knowledge transfer for task incremental learning with
data-free subnetwork", Sec. 3.3), for ONE replica; pure.

After a later task has trained new units, an earlier task k may profit
from them, but its data is gone. DSN crafts *impressions* of task k from
the trained network alone, following zero-shot knowledge distillation
(Nayak et al., ICML 2019, Sec. 3):

1. class similarity from the last layer: the cosine similarity of task
   k's head columns, ``S = W_k^T W_k`` with unit-norm columns
   (:func:`class_similarity`);
2. Dirichlet soft labels: for an impression of class c,
   ``y ~ Dir(beta * minmax(S[c]))`` (Nayak et al.'s concentration; the
   row min-max normalized to [0, 1], floored at ``1e-3`` so every
   concentration is positive) (:func:`soft_labels`);
3. synthetic inputs optimized so that the task-k network's softmax at
   temperature tau matches them: minimize ``KL(y || softmax(f_k(x)/tau))``
   with Adam (paper: 1500 steps, lr 0.01, a buffer of 1000, tau 20)
   (:func:`synthesize`).

The replay step (:func:`replay_task`) then lets task k use the units
later tasks added: its hard gates open on every used unit
(``gate_l[k] = 6`` there, HAT's clamp), the head rows of the newly opened
units in task k's head block start at zero (so the function is unchanged
at the start), and ONLY task k's head block is trained to distill the
pre-replay task-k network's tau-softened outputs on the impressions.

What may change: the rows ``gate_l[k]`` and task k's head block
(``head/kernel[:, kC:(k+1)C]``, ``head/bias[kC:(k+1)C]``); every other
leaf is returned bit-identical (a ``where`` on the block, besides the
masked gradient), so no other task moves and no weight a task uses moves.

Where we are ours, not DSN's code: DSN decides per task which new
neurons to take and fine-tunes its mask; we open all used units and
train the head block (the smallest change the protection allows), with
no acceptance test (there is no data to test on), so BWT >= 0 is
measured, not promised.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxticket.models import gated_mlp

PyTree = Any
Apply = Callable[[PyTree, jax.Array], jax.Array]

CONCENTRATION_FLOOR = 1e-3


def class_similarity(head_kernel: jax.Array, k: jax.Array, classes: int
                     ) -> jax.Array:
  """[C, C] cosine similarity of task ``k``'s head columns."""
  w = jax.lax.dynamic_slice_in_dim(head_kernel, k * classes, classes, axis=1)
  w = w / jnp.maximum(jnp.linalg.norm(w, axis=0, keepdims=True), 1e-12)
  return w.T @ w


def concentrations(sim: jax.Array, beta: float) -> jax.Array:
  """Nayak et al.'s Dirichlet concentration per class: each similarity row
  min-max normalized to [0, 1], times ``beta`` (floored above 0)."""
  lo = sim.min(1, keepdims=True)
  hi = sim.max(1, keepdims=True)
  norm = (sim - lo) / jnp.maximum(hi - lo, 1e-12)
  return jnp.maximum(beta * norm, CONCENTRATION_FLOOR)


def soft_labels(key: jax.Array, sim: jax.Array, n: int, beta: float
                ) -> jax.Array:
  """[n, C] Dirichlet soft labels, classes in turn (n // C per class)."""
  c = jnp.arange(n) % sim.shape[0]
  return jax.random.dirichlet(key, concentrations(sim, beta)[c])


def kl_to(target: jax.Array, logits: jax.Array, tau: float) -> jax.Array:
  """Mean ``KL(target || softmax(logits / tau))`` over the batch."""
  logq = jax.nn.log_softmax(logits / tau, -1)
  logp = jnp.log(jnp.maximum(target, 1e-12))
  return jnp.mean(jnp.sum(target * (logp - logq), -1))


class Impressions(NamedTuple):
  x: jax.Array  # [n, *input_shape] synthetic inputs (model input space)
  y: jax.Array  # [n, C] their Dirichlet soft labels
  losses: jax.Array  # [steps] the KL while optimizing x


def synthesize(apply: Apply, params: PyTree, key: jax.Array, k: jax.Array,
               classes: int, input_shape: tuple, n: int, steps: int,
               lr: float, tau: float, beta: float) -> Impressions:
  """Task ``k``'s impressions from ``params`` alone (steps 1-3 above)."""
  ky, kx = jax.random.split(key)
  y = soft_labels(ky, class_similarity(params["head"]["kernel"], k, classes),
                  n, beta)
  x = jax.random.normal(kx, (n, *input_shape))
  opt = optax.adam(lr)
  loss = lambda x: kl_to(y, apply(params, x), tau)

  def body(carry, _):
    x, s = carry
    l, g = jax.value_and_grad(loss)(x)
    u, s = opt.update(g, s, x)
    return (optax.apply_updates(x, u), s), l

  (x, _), losses = jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
  return Impressions(x, y, losses)


def head_block(params: PyTree, k: jax.Array, classes: int) -> PyTree:
  """Bool tree like ``params``: True on task k's head block only."""
  def mark(path, x):
    name = "/".join(str(getattr(p, "key", p)) for p in path)
    if name.startswith("head/"):
      cols = jnp.arange(x.shape[-1])
      block = (cols >= k * classes) & (cols < (k + 1) * classes)
      return jnp.broadcast_to(block, x.shape)
    return jnp.zeros(x.shape, bool)
  return jax.tree_util.tree_map_with_path(mark, params)


def open_units(params: PyTree, k: jax.Array, layers: int, classes: int
               ) -> PyTree:
  """Task k's gates opened on every used unit; head rows of the units
  that opens (last hidden layer) zeroed in task k's block, so the task-k
  function is unchanged."""
  out = dict(params)
  last_new = None
  for l in range(layers):
    e = params[f"gate_{l}"]
    used = params[f"used_{l}"] > 0
    row = e[k]
    new = used & (row <= 0)
    out[f"gate_{l}"] = e.at[k].set(
        jnp.where(used, jnp.maximum(row, gated_mlp.GATE_CLAMP), row))
    last_new = new
  head = dict(params["head"])
  block = head_block(params, k, classes)["head"]["kernel"]
  head["kernel"] = jnp.where(block & last_new[:, None], 0.0, head["kernel"])
  out["head"] = head
  return out


class Replayed(NamedTuple):
  params: PyTree
  synth_losses: jax.Array  # [synth steps]
  replay_losses: jax.Array  # [replay steps]


def replay_task(apply: Apply, params: PyTree, key: jax.Array, k: jax.Array,
                classes: int, input_shape: tuple, layers: int, n: int,
                synth_steps: int, synth_lr: float, tau: float, beta: float,
                steps: int, lr: float) -> Replayed:
  """Impressions of task k, then its head block distilled from the
  pre-replay task-k network with the later tasks' units open."""
  imp = synthesize(apply, params, key, k, classes, input_shape, n,
                   synth_steps, synth_lr, tau, beta)
  teacher = jax.nn.softmax(apply(params, imp.x) / tau, -1)
  start = open_units(params, k, layers, classes)
  allowed = head_block(start, k, classes)
  opt = optax.adam(lr)
  loss = lambda p: kl_to(teacher, apply(p, imp.x), tau) * tau ** 2

  def body(carry, _):
    p, s = carry
    l, g = jax.value_and_grad(loss)(p)
    g = jax.tree.map(lambda g, a: jnp.where(a, g, 0.0), g, allowed)
    u, s = opt.update(g, s, p)
    p = jax.tree.map(lambda new, old, a: jnp.where(a, new, old),
                     optax.apply_updates(p, u), start, allowed)
    return (p, s), l

  (p, _), losses = jax.lax.scan(body, (start, opt.init(start)), None,
                                length=steps)
  return Replayed(p, imp.losses, losses)


__all__ = ["class_similarity", "concentrations", "soft_labels", "kl_to",
           "synthesize", "head_block", "open_units", "replay_task",
           "Impressions", "Replayed"]
