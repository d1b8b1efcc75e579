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
later tasks added to the last hidden layer: its hard gates there open on
every used unit (``gate_l[k] = 6``, HAT's clamp), the head rows of the
newly opened units in task k's head block start at zero (so the function
is unchanged at the start), and ONLY task k's head block is trained to fit
the impressions' Dirichlet labels (KL at temperature tau). The result is
kept only if it fits a second, held-out buffer of impressions better than
the pre-replay network did (else nothing changes).

What may change: the rows ``gate_l[k]`` and task k's head block
(``head/kernel[:, kC:(k+1)C]``, ``head/bias[kC:(k+1)C]``); every other
leaf is returned bit-identical (a ``where`` on the block, besides the
masked gradient), so no other task moves and no weight a task uses moves.

Where we are ours, not DSN's code: DSN decides per task which new
neurons to take and fine-tunes its mask; we open all used last-layer
units and train the head block (the smallest change the protection
allows), accepted by the held-out impressions; impressions come from the
pre-replay net itself, so the test is biased toward it (an accepted
replay beat it on its own impressions). BWT >= 0 on real data is
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
  """Task k's gates in the LAST hidden layer opened on every used unit,
  the head rows of the units that opens zeroed in task k's block: the
  task-k function is unchanged (opening a lower layer would feed new
  inputs to units task k already uses and change it; measured: BWT -12%
  on the default config when every layer was opened)."""
  out = dict(params)
  l = layers - 1
  e = params[f"gate_{l}"]
  used = params[f"used_{l}"] > 0
  row = e[k]
  new = used & (row <= 0)
  out[f"gate_{l}"] = e.at[k].set(
      jnp.where(used, jnp.maximum(row, gated_mlp.GATE_CLAMP), row))
  head = dict(params["head"])
  block = head_block(params, k, classes)["head"]["kernel"]
  head["kernel"] = jnp.where(block & new[:, None], 0.0, head["kernel"])
  out["head"] = head
  return out


class Replayed(NamedTuple):
  params: PyTree
  synth_losses: jax.Array  # [synth steps] KL of the training impressions
  replay_losses: jax.Array  # [replay steps] KL of the student to them
  held_before: jax.Array  # held-out impressions' KL, pre-replay net
  held_after: jax.Array  # ... and the replayed one
  accepted: jax.Array  # held_after < held_before: the replay is kept


def replay_task(apply: Apply, params: PyTree, key: jax.Array, k: jax.Array,
                classes: int, input_shape: tuple, layers: int, n: int,
                synth_steps: int, synth_lr: float, tau: float, beta: float,
                steps: int, lr: float) -> Replayed:
  """Two buffers of ``n // 2`` impressions of task k (train, held out);
  task k's head block, with the later tasks' last-layer units open,
  trained to fit the training impressions' Dirichlet labels; kept only if
  it fits the HELD-OUT impressions' labels better than the pre-replay
  net (DSN keeps a new mask only when it helps on the impressions), else
  ``params`` are returned unchanged."""
  k1, k2 = jax.random.split(key)
  half = max(n // 2, 1)
  imp = synthesize(apply, params, k1, k, classes, input_shape, half,
                   synth_steps, synth_lr, tau, beta)
  held = synthesize(apply, params, k2, k, classes, input_shape, half,
                    synth_steps, synth_lr, tau, beta)
  start = open_units(params, k, layers, classes)
  allowed = head_block(start, k, classes)
  opt = optax.adam(lr)
  loss = lambda p: kl_to(imp.y, apply(p, imp.x), tau)

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
  before = kl_to(held.y, apply(params, held.x), tau)
  after = kl_to(held.y, apply(p, held.x), tau)
  ok = after < before
  out = jax.tree.map(lambda a, b: jnp.where(ok, a, b), p, params)
  return Replayed(out, imp.losses, losses, before, after, ok)


__all__ = ["class_similarity", "concentrations", "soft_labels", "kl_to",
           "synthesize", "head_block", "open_units", "replay_task",
           "Impressions", "Replayed"]
