"""DSN's data-free replay for backward transfer (Gao et al., NeurIPS 2023,
"Enhancing knowledge transfer for task incremental learning with
data-free subnetwork", Sec. 3.3), for ONE replica; pure.

After a new task i has trained, an earlier task k may profit from the
units i (and others) added, but k's data is gone. The rule below follows
the reference code (github shanxiaojun/DSN: ``newrun.py`` and
``approaches/dsn.py: generation_transfer``; read, not copied) where it is
consistent with the no-forgetting promise, and says where it is not:

1. Which tasks (newrun.py): every earlier task, in decreasing order of
   the cosine similarity of its unit mask to the new task's, averaged
   over the gated layers (:func:`task_similarity`); the loop STOPS at the
   first task whose replay is rejected (code: ``break`` on step back).
   The order and the stop are done by the caller (continual.py).
2. Impressions (``cf_il/recover_memory.py``; zero-shot KD, Nayak et al.,
   ICML 2019, Sec. 3): class similarity from task k's head columns
   (:func:`class_similarity`), Dirichlet soft labels
   (:func:`soft_labels`), random inputs optimized with Adam so that the
   task-k net's softmax at temperature tau matches them
   (:func:`synthesize`); the buffer stores the inputs AND the pre-replay
   net's logits on them (code: ``synth_logits``), which are the targets.
3. What changes (generation_transfer): task k's "new" units are those some
   task uses and k does not (``(1 - old_mask[k]) * mask_pre``), in EVERY
   gated layer. Their gate embeddings in row k are re-drawn N(0, 1); task
   k's head columns from the new last-layer units are re-drawn (code:
   kaiming-uniform; here lecun-normal, the head's own init) and task k's
   head bias block is re-drawn (code: uniform(+-1/sqrt(fan_in)))
   (:func:`reinit`). Only those leaves get gradients (:func:`trainable`):
   gate rows k on new units (HAT compensation, clamp +-6 after each step,
   as in the code), head block columns of new units, head bias block.
4. Loss and optimizer (generation_transfer): ``alpha * MSE(f_k(x),
   logits)`` with alpha 0.3 on minibatches of 64 of the buffer, SGD at lr
   0.05, the lr divided by 3 half way (code: 10 epochs, patience 5,
   lr_factor 3). NOT the code: the gradient is clipped to global norm
   ``clip`` first (``optax.clip_by_global_norm``; continual.replay_clip,
   default 1.0). Why: unlike the training CE, the MSE's gradient grows
   with the logit error, and the impressions' logits are far larger than
   real data's (tau 20 and near one-hot Dirichlet labels: on split
   Fashion-MNIST, 2 classes per task, |logit| ~ 30-47 on the impressions
   vs <= 26 on validation data, with 784-dim inputs), so plain SGD at lr
   0.05 is past its stability limit and overflows within ~10 steps (loss
   1e11-1e22, then NaN; measured). The code has no clip here (its
   ``clipgrad`` 10000 is only in train_epoch, and is never reached).
   Bounding the impressions to the data range alone does not fix it
   (measured: still NaN).
5. Accept or step back: the code compares against the task's stored
   VALIDATION accuracy (``best_acc = valid_acc``, measured on real
   validation data when k was learned) and keeps the replay only if it is
   better; otherwise it restores the pre-replay net (new units' gates back
   to -6, head columns zeroed, bias restored) and stops. Here: kept iff
   task k's validation accuracy strictly rises (else ``params`` come back
   unchanged). A replay whose loss or weights become non-finite is
   rejected and flagged ``diverged`` (reported as such, never a NaN in a
   table). This uses task k's validation split for the accept decision
   only (never for training): data-free for the weights, not for model
   selection -- as in the code.

Where we are not the code:
- The code sets ``requires_grad=True`` on every parameter for the first
  epochs of the replay and does not mask the shared weights' gradients,
  so SGD moves weights other tasks use (forgetting), against the paper's
  promise; here every shared weight is frozen (bit-identical).
- The code synthesizes the impressions AFTER re-drawing task k's gates and
  head (from the perturbed net); the paper describes impressions of the
  trained task; we synthesize from the pre-replay net.
- The code's synthesis loss is ``-CE(f/tau, y)`` (maximized); Nayak et
  al. minimize it; we minimize the KL (same gradient as the CE).
- The code's ``v_best`` is never updated (stays +inf) so its check always
  steps back: the released code never keeps a replay. We implement the
  evident intent (keep iff the validation accuracy improves).
- The code sizes each class's share of the buffer by its validation
  precision (worst classes get more); we use equal shares.
- The code trains at the gate slope s = 1 and tests at s = s_max; we train
  at s = s_max with HAT's gradient compensation (forward = test gates).
- The paper's text was not available to us; the rules above come from the
  code. Paper hyper-parameters (notes): 1500 synthesis steps, lr 0.01,
  buffer 1000, tau 20.

What may change: rows ``gate_l[k]`` at task k's new units (every layer),
task k's head block (``head/kernel[new, kC:(k+1)C]``,
``head/bias[kC:(k+1)C]``); every other leaf comes back bit-identical
(a ``where`` on the mask, besides the masked gradient), so no other task
moves and no weight a task uses moves. Task k's own function may change
(that is backward transfer); BWT >= 0 on the test split is measured, not
promised (acceptance is on the validation split).
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


#: The code's replay hyper-parameters (approaches/dsn.py, generation_transfer).
ALPHA = 0.3  # weight of the logit MSE
BATCH = 64  # minibatch of the buffer (the code's sbatch)
LR_FACTOR = 3.0  # lr divided by it half way (patience 5 of 10 epochs)


def hard_gates(params: PyTree, t: jax.Array, layers: int) -> list:
  """Task ``t``'s test-time unit masks, one [H] float array per layer."""
  return [gated_mlp.hard(params[f"gate_{l}"][t]) for l in range(layers)]


def task_similarity(params: PyTree, i: jax.Array, layers: int
                    ) -> jax.Array:
  """[T] cosine similarity of every task's unit mask to task ``i``'s,
  averaged over the gated layers (newrun.py: ``torch.cosine_similarity``
  of the masks at s_max per layer, mean over layers)."""
  tasks = params["gate_0"].shape[0]
  cos = []
  for l in range(layers):
    g = gated_mlp.hard(params[f"gate_{l}"])  # [T, H]
    gi = g[i]
    num = g @ gi
    den = jnp.linalg.norm(g, axis=1) * jnp.linalg.norm(gi)
    cos.append(num / jnp.maximum(den, 1e-8))
  return jnp.mean(jnp.stack(cos), 0).reshape(tasks)


def new_units(params: PyTree, k: jax.Array, layers: int) -> list:
  """Per layer, [H] bool: units some task uses and task ``k`` does not
  (the code's ``(1 - old_mask[k]) * mask_pre``)."""
  return [(params[f"used_{l}"] > 0) & (params[f"gate_{l}"][k] <= 0)
          for l in range(layers)]


def trainable(params: PyTree, k: jax.Array, layers: int, classes: int,
              last_only: bool = False) -> PyTree:
  """Bool tree like ``params``: True where the replay may write (point 3
  of the module docstring); ``last_only``: new units of the last hidden
  layer only (an ablation, not the code: lower layers' new units feed
  units task k already uses through frozen weights and change them)."""
  new = new_units(params, k, layers)
  if last_only:
    new = [jnp.zeros_like(u) for u in new[:-1]] + [new[-1]]
  rows = jnp.arange(params["gate_0"].shape[0]) == k
  cols = jnp.arange(params["head"]["bias"].shape[0])
  block = (cols >= k * classes) & (cols < (k + 1) * classes)
  out = jax.tree.map(lambda x: jnp.zeros(x.shape, bool), params)
  for l in range(layers):
    out[f"gate_{l}"] = rows[:, None] & new[l][None, :]
  out["head"] = {"kernel": new[-1][:, None] & block[None, :],
                 "bias": block}
  return out


def reinit(params: PyTree, key: jax.Array, k: jax.Array, layers: int,
           classes: int, last_only: bool = False) -> PyTree:
  """Task k's start for the replay: its gates on new units re-drawn
  N(0, 1), its head columns from new last-layer units re-drawn
  lecun-normal, its head bias block re-drawn uniform(+-1/sqrt(fan_in))
  (generation_transfer; module docstring, point 3)."""
  allowed = trainable(params, k, layers, classes, last_only)
  keys = jax.random.split(key, layers + 2)
  out = dict(params)
  for l in range(layers):
    e = params[f"gate_{l}"]
    out[f"gate_{l}"] = jnp.where(allowed[f"gate_{l}"],
                                 jax.random.normal(keys[l], e.shape), e)
  w, b = params["head"]["kernel"], params["head"]["bias"]
  fan_in = w.shape[0]
  w0 = jax.random.normal(keys[-2], w.shape) / jnp.sqrt(fan_in)
  bound = 1.0 / jnp.sqrt(fan_in)
  b0 = jax.random.uniform(keys[-1], b.shape, minval=-bound, maxval=bound)
  out["head"] = {**params["head"],
                 "kernel": jnp.where(allowed["head"]["kernel"], w0, w),
                 "bias": jnp.where(allowed["head"]["bias"], b0, b)}
  return out


def accuracy(apply: Apply, params: PyTree, x: jax.Array, y: jax.Array,
             w: jax.Array) -> jax.Array:
  """Weighted accuracy (``w`` 0 on padding rows)."""
  hit = (jnp.argmax(apply(params, x), -1) == y).astype(jnp.float32)
  return jnp.sum(hit * w) / jnp.maximum(jnp.sum(w), 1.0)


class Replayed(NamedTuple):
  params: PyTree
  synth_losses: jax.Array  # [synth steps] KL of the impressions
  replay_losses: jax.Array  # [replay steps] the logit MSE while replaying
  val_before: jax.Array  # task k's validation accuracy, pre-replay net
  val_after: jax.Array  # ... and the replayed one
  accepted: jax.Array  # active, finite and val_after > val_before: kept
  diverged: jax.Array  # active and the loss or weights became non-finite


def replay_task(apply: Apply, apply_train: Apply, params: PyTree,
                key: jax.Array, k: jax.Array, active: jax.Array,
                val: tuple, classes: int, input_shape: tuple, layers: int,
                n: int, synth_steps: int, synth_lr: float, tau: float,
                beta: float, steps: int, lr: float,
                last_only: bool = False, clip: float | None = 1.0
                ) -> Replayed:
  """DSN's replay of task ``k`` (module docstring). ``apply`` is the
  test-time forward (hard gates), ``apply_train`` the training forward at
  s = s_max (HAT-compensated gate gradients); ``val = (x, y, w)`` task
  k's validation split (``w`` 0 on padding). ``active`` False (an earlier,
  more similar task was rejected: the code's ``break``) returns
  ``params`` unchanged; ``last_only`` restricts the new units to the last
  hidden layer (:func:`trainable`); ``clip``: the global gradient-norm
  clip of the replay SGD (None or 0: none, as in the code)."""
  ks, kr, kb = jax.random.split(key, 3)
  imp = synthesize(apply, params, ks, k, classes, input_shape, n,
                   synth_steps, synth_lr, tau, beta)
  target = jax.lax.stop_gradient(apply(params, imp.x))
  start = reinit(params, kr, k, layers, classes, last_only)
  allowed = trainable(params, k, layers, classes, last_only)
  sched = optax.piecewise_constant_schedule(
      lr, {max(steps // 2, 1): 1.0 / LR_FACTOR})
  opt = optax.sgd(sched)
  if clip:
    opt = optax.chain(optax.clip_by_global_norm(clip), opt)
  batch = min(BATCH, n)

  def loss(p, idx):
    out = apply_train(p, imp.x[idx])
    return ALPHA * jnp.mean(jnp.square(out - target[idx]))

  def body(carry, i):
    p, s = carry
    idx = jax.random.choice(jax.random.fold_in(kb, i), n, (batch,),
                            replace=False)
    l, g = jax.value_and_grad(loss)(p, idx)
    g = jax.tree.map(lambda g, a: jnp.where(a, g, 0.0), g, allowed)
    u, s = opt.update(g, s, p)
    p = dict(optax.apply_updates(p, u))
    for l_ in range(layers):  # HAT's / the code's clamp of the embeddings
      p[f"gate_{l_}"] = jnp.clip(p[f"gate_{l_}"], -gated_mlp.GATE_CLAMP,
                                 gated_mlp.GATE_CLAMP)
    p = jax.tree.map(lambda new, old, a: jnp.where(a, new, old), p, start,
                     allowed)
    return (p, s), l

  (p, _), losses = jax.lax.scan(body, (start, opt.init(start)),
                                jnp.arange(steps))
  before = accuracy(apply, params, *val)
  after = accuracy(apply, p, *val)
  finite = jnp.all(jnp.isfinite(losses)) & jnp.all(jnp.stack(
      [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p)]))
  ok = active & finite & (after > before)
  out = jax.tree.map(lambda a, b: jnp.where(ok, a, b), p, params)
  return Replayed(out, imp.losses, losses, before, after, ok,
                  active & ~finite)


__all__ = ["class_similarity", "concentrations", "soft_labels", "kl_to",
           "synthesize", "hard_gates", "task_similarity", "new_units",
           "trainable", "reinit", "accuracy", "replay_task", "Impressions",
           "Replayed", "ALPHA", "BATCH", "LR_FACTOR"]
