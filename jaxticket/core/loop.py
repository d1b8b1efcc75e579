"""The training loop: replicas x steps as ONE compiled program.

A run is a ``lax.scan`` over :func:`jaxticket.core.step.train_step`,
vectorized over a leading replica axis (``jax.vmap``) and, with several
devices, sharded over a replica mesh (``jax.shard_map``,
:mod:`jaxticket.core.mesh`). Seeds, learning rates, sparsities and settings
of one shape are data on that axis, so a whole grid is one program, compiled
once per shape (:class:`Trainer` counts its traces). This module and
:mod:`jaxticket.core.mesh` are the only places that call jit, vmap or
shard_map.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from jaxticket.core import mesh as mesh_lib
from jaxticket.core import optim
from jaxticket.core import masks as masks_lib
from jaxticket.core import selective
from jaxticket.core import task as task_lib
from jaxticket.core.parametrization import merge
from jaxticket.core.step import (DataArrays, Program, TrainState, apply_model,
                                 device_arrays, epoch_permutation, init_state,
                                 restart, steps_per_epoch, train_step)
from jaxticket.core.task import mean_loss
from jaxticket.core.updater import is_static

PyTree = Any

REPLICA_LOOPS = ("auto", "vmap", "map")

#: Loss reported for the steps a staggered replica waits (a training loss is
#: never negative here, and NaN/Inf mean divergence).
WAITING = -1.0


def over_replicas(fn: Callable, how: str, in_axes: tuple) -> Callable:
  """Batch ``fn`` over the leading replica axis of the args whose
  ``in_axes`` entry is 0 (others are shared).

  ``vmap`` vectorizes (the default); ``map`` runs replicas one after
  another *inside* the compiled program (``lax.map``), which bounds memory
  to one replica's activations and was up to 15% faster for ResNet-1D on a
  2-core CPU (and 25% slower for CNN-1D): a knob for benchmarks.
  """
  if how == "vmap":
    return jax.vmap(fn, in_axes=in_axes)
  if how != "map":
    raise ValueError(f"Unknown replica loop {how!r}; choose vmap or map.")

  def mapped(*args):
    batched = tuple(a for a, ax in zip(args, in_axes) if ax == 0)

    def one(xs):
      it = iter(xs)
      return fn(*[next(it) if ax == 0 else a for a, ax in zip(args, in_axes)])

    return jax.lax.map(one, batched)

  return mapped


def choose_replica_loop(how: str) -> str:
  """``auto`` is ``vmap``."""
  return "vmap" if how == "auto" else how


def _epoch(step: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
  return step // steps_per_epoch(num_examples, batch_size)


def run_steps(prog: Program, state: TrainState, hp: optim.HParams,
              arrays: DataArrays, num_steps: int, replica_loop: str = "vmap",
              staggered: bool = False, clock_start: jax.Array | None = None
              ) -> tuple[TrainState, jax.Array]:
  """``num_steps`` steps of R stacked replicas as one ``lax.scan``.

  Returns (state, losses[R, num_steps]). The scan carries each replica's
  current epoch permutation and recomputes it (under an unbatched
  ``lax.cond``) only when some replica enters a new epoch; likewise the
  mask updater runs (under an unbatched ``lax.cond``) only at clock ticks
  where some replica has an update step. Replicas may be at different steps
  (e.g. different rewind points). With ``staggered``, a clock starts at the
  earliest replica's step and a replica waits (state unchanged, loss
  :data:`WAITING`) until the clock reaches its own step, so replicas that
  start later finish together with the others.
  """
  n, bs = arrays.train_x.shape[0], prog.recipe.batch_size
  perms_of = jax.vmap(lambda k, e: epoch_permutation(k, e, n))
  epoch0 = _epoch(state.step, n, bs)
  step_all = over_replicas(
      lambda s, h, p, u: train_step(prog, s, h, arrays, p, u), replica_loop,
      (0, 0, 0, None))
  updates = not is_static(prog.updater)

  def body(carry, clock):
    s, perms, cached = carry
    epoch = _epoch(s.step, n, bs)
    stale = epoch != cached
    perms = jax.lax.cond(
        jnp.any(stale),
        lambda: jnp.where(stale[:, None], perms_of(s.data_key, epoch), perms),
        lambda: perms)
    update_now = (jnp.any(jax.vmap(prog.updater.is_update_step)(s.step))
                  if updates else False)
    new, loss = step_all(s, hp, perms, update_now)
    if staggered:
      active = s.step <= clock
      keep = lambda a, b: jnp.where(
          active.reshape(active.shape + (1,) * (a.ndim - 1)), a, b)
      new = jax.tree.map(keep, new, s)
      loss = jnp.where(active, loss, WAITING)
    return (new, perms, epoch), loss

  carry = (state, perms_of(state.data_key, epoch0), epoch0)
  if clock_start is None:
    clock_start = jnp.min(state.step)
  clocks = clock_start + jnp.arange(num_steps)
  (state, _, _), losses = jax.lax.scan(body, carry, clocks)
  return state, losses.T


#: Seed of the fixed key a corrupting task (MLM) evaluates with.
EVAL_TASK_SEED = 17


def evaluate(prog: Program, params: PyTree, batch_stats: PyTree,
             x: jax.Array, y: jax.Array, batch_size: int = 1000,
             context: PyTree = None) -> tuple[jax.Array, jax.Array]:
  """(mean loss, mean score) of one replica on (x, y), in fixed-size
  batches (score: the task's, e.g. accuracy). ``context``: the data's
  shared arrays (:class:`~jaxticket.core.step.DataArrays`), if any."""
  loss, score, _ = evaluate_selective(prog, params, batch_stats, x, y,
                                      batch_size, context, with_curve=False)
  return loss, score


class Selective(NamedTuple):
  """Selective-classification metrics of one replica on one split
  (:mod:`jaxticket.core.selective`): AURC ranking by the task's own score
  (the abstain output for Deep Gamblers, the softmax response otherwise),
  AURC ranking by the softmax response, and the risk at each of
  ``selective.COVERAGES`` by the task's own score. NaN for a task
  without confidences (regression)."""
  aurc: jax.Array
  aurc_softmax: jax.Array
  risk: jax.Array


def evaluate_selective(prog: Program, params: PyTree, batch_stats: PyTree,
                       x: jax.Array, y: jax.Array, batch_size: int = 1000,
                       context: PyTree = None, with_curve: bool = True
                       ) -> tuple[jax.Array, jax.Array, Selective | None]:
  """:func:`evaluate` plus, from the same forward pass, the
  :class:`Selective` metrics (``with_curve``; None otherwise)."""
  n = x.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  split = lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(
      (num_batches, batch_size) + a.shape[1:])
  xs, ys = split(x), split(y)
  valid = (jnp.arange(num_batches * batch_size) < n).reshape(
      num_batches, batch_size)
  ranks = with_curve and hasattr(prog.task, "confidence")

  def one(args):
    xb, yb, vb, i = args
    # A task that corrupts inputs (MLM) sees a fixed key per batch: every
    # replica and every evaluation scores the same masked positions.
    xb, yb = task_lib.prepare(prog.task, jax.random.fold_in(
        jax.random.key(EVAL_TASK_SEED), i), xb, yb)
    outputs, _ = apply_model(prog.model, params, batch_stats,
                             prog.normalize(xb), False, context)
    outputs = outputs.astype(jnp.float32)
    losses, scores = prog.task.per_example(outputs, yb)
    sums = (jnp.sum(losses * vb), jnp.sum(scores * vb))
    if not ranks:
      return sums
    return sums + (scores,) + tuple(task_lib.confidences(prog.task, outputs))

  out = jax.lax.map(one, (xs, ys, valid, jnp.arange(num_batches)))
  loss, score = jnp.sum(out[0]) / n, jnp.sum(out[1]) / n
  if not with_curve:
    return loss, score, None
  if not ranks:
    nan = jnp.full((), jnp.nan, jnp.float32)
    return loss, score, Selective(nan, nan, jnp.full(
        (len(selective.COVERAGES),), jnp.nan, jnp.float32))
  # padding lies at the end of the flattened split: keep the first n
  correct, own, soft = (a.reshape(-1)[:n] for a in out[2:])
  return loss, score, Selective(
      selective.aurc(own, correct), selective.aurc(soft, correct),
      selective.risk_at(own, correct))


class GradientFlow(NamedTuple):
  """Per-replica gradient-flow diagnostics (Evci et al. 2022), [R] each:
  the L2 norm of the masked training-loss gradient on a fixed batch, and
  the L2 distance of the weights from an anchor (e.g. their start)."""
  grad_norm: jax.Array
  distance: jax.Array


def gradient_flow(prog: Program, params: PyTree, batch_stats: PyTree,
                  mask: PyTree, anchor: PyTree, x: jax.Array, y: jax.Array,
                  context: PyTree = None) -> GradientFlow:
  """:class:`GradientFlow` of one replica: the gradient of the mean task
  loss on (x, y) (training mode, as rigl_tf2 measures it; no weight decay)
  with respect to the trained leaves, prunable ones masked, and
  ``||params - anchor||``. ``context``: the data's shared arrays (a graph
  set's), if any."""
  trainable, frozen = prog.parametrization.split(params)

  def loss(tr):
    outputs, _ = apply_model(prog.model, merge(tr, frozen), batch_stats,
                             prog.normalize(x), True, context)
    return mean_loss(prog.task, outputs.astype(jnp.float32), y)

  grads = masks_lib.apply(jax.grad(loss)(trainable), mask)
  sq = lambda tree: sum(jnp.sum(jnp.square(g.astype(jnp.float32)))
                        for g in jax.tree.leaves(tree))
  diff = jax.tree.map(lambda p, a: p - a, params, anchor)
  return GradientFlow(jnp.sqrt(sq(grads)), jnp.sqrt(sq(diff)))


class Evaluation(NamedTuple):
  """Per-replica metrics of one evaluation (arrays with a replica axis).
  ``*_accuracy`` is the task's score (accuracy for classification)."""
  val_loss: jax.Array
  val_accuracy: jax.Array
  test_loss: jax.Array
  test_accuracy: jax.Array
  #: Selective classification on the test split (:class:`Selective`;
  #: NaN for tasks without confidences): AURC by the task's own score,
  #: AURC by the softmax response, risk at ``selective.COVERAGES`` [R, K].
  test_aurc: jax.Array
  test_aurc_softmax: jax.Array
  test_risk: jax.Array


class Trainer:
  """Compiled, vmapped training and evaluation of one :class:`Program`.

  All methods take and return *stacked* pytrees (leading replica axis). The
  compiled functions are built once per Trainer and reused for every level,
  learning rate and seed, since those are data, not program structure;
  ``traces`` counts how often each was traced (once per shape).

  With several local devices (GPUs, TPU cores, or simulated CPU devices,
  ``train.cpu_devices``) and ``shard``, training shards the replica axis over
  a :func:`~jaxticket.core.mesh.replica_mesh` with ``jax.shard_map``: each
  device runs the scan over its own replicas, with no communication inside
  the loop; inputs are placed and results fetched back by transfers
  (:meth:`_on_mesh`), so all host-side code (pruning, logging, checkpoints)
  sees single-device arrays. In a host-spanning job the mesh holds devices
  of every process and results are gathered whole into every process.
  """

  def __init__(self, prog: Program, data: Any, eval_batch_size: int = 1000,
               replica_loop: str = "auto", shard: bool = True):
    self.prog = prog
    self.data = data
    self.recipe = prog.recipe
    self.arrays = device_arrays(data)
    self.eval_batch_size = eval_batch_size
    self.replica_loop = loop = choose_replica_loop(replica_loop)
    self.shard = shard
    self.traces: collections.Counter = collections.Counter()
    input_shape = tuple(data.train_x.shape[1:])

    def init_all(keys, context):
      self.traces["init"] += 1
      return jax.vmap(lambda k: init_state(prog, k, input_shape, context))(
          keys)

    self._init = jax.jit(init_all)
    self._restart = jax.jit(jax.vmap(lambda s: restart(prog, s)))

    def run(s, m, h, a, clock, n, staggered, mesh):
      # ``m``: the masks, passed apart from the (donated) rest of the state
      # so that callers may keep them. ``clock``: the earliest replica's
      # step, computed by the caller so that the sharded program holds no
      # collective at all.
      self.traces["run"] += 1
      def fn(s, m, h, a, c):
        return run_steps(prog, s.replace(mask=m), h, a, n, loop, staggered, c)
      if mesh is not None:  # each device scans its own replicas
        rep = P(mesh_lib.REPLICA_AXIS)
        fn = jax.shard_map(fn, mesh=mesh,
                           in_specs=(rep, rep, rep, P(), P()),
                           out_specs=(rep, rep), check_vma=False)
      return fn(s, m, h, a, clock)

    self._run = jax.jit(run, static_argnums=(5, 6, 7), donate_argnums=0)
    ev = lambda p, b, x, y, c: evaluate(prog, p, b, x, y, eval_batch_size, c)

    def ev_one(p, b, a):
      test_loss, test_acc, sel = evaluate_selective(
          prog, p, b, a.test_x, a.test_y, eval_batch_size, a.context)
      return Evaluation(*ev(p, b, a.val_x, a.val_y, a.context), test_loss,
                        test_acc, *sel)

    ev_all = over_replicas(ev_one, loop, (0, 0, None))

    def evaluate_all(p, b, a, mesh):
      self.traces["evaluate"] += 1
      fn = ev_all
      if mesh is not None:
        rep = P(mesh_lib.REPLICA_AXIS)
        fn = jax.shard_map(fn, mesh=mesh, in_specs=(rep, rep, P()),
                           out_specs=rep, check_vma=False)
      return fn(p, b, a)

    self._eval = jax.jit(evaluate_all, static_argnums=3)
    flow_all = over_replicas(
        lambda p, b, m, a, x, y, c: gradient_flow(prog, p, b, m, a, x, y, c),
        loop, (0, 0, 0, 0, None, None, None))

    def flow(p, b, m, a, arrays, x, y, mesh):
      self.traces["gradient_flow"] += 1
      fn = flow_all
      if mesh is not None:
        rep = P(mesh_lib.REPLICA_AXIS)
        fn = jax.shard_map(fn, mesh=mesh, in_specs=(rep,) * 4 + (P(),) * 3,
                           out_specs=rep, check_vma=False)
      return fn(p, b, m, a, x, y, arrays.context)

    self._flow = jax.jit(flow, static_argnums=7)
    self._global_arrays: dict[Mesh, DataArrays] = {}

  def use_data(self, data: Any) -> None:
    """Train and evaluate on ``data`` from now on: a dataset with the same
    array shapes reuses the compiled programs (the arrays are arguments,
    never constants), e.g. the tasks of a task-incremental sequence."""
    arrays = device_arrays(data)
    old = jax.tree.map(jnp.shape, self.arrays)
    if jax.tree.map(jnp.shape, arrays) != old:
      raise ValueError("Trainer.use_data needs arrays shaped like the "
                       f"current ones ({old}); build a new Trainer.")
    self.data, self.arrays = data, arrays
    self._global_arrays = {}

  def init(self, keys: jax.Array) -> TrainState:
    """Stacked initial states (dense masks), one per key."""
    return self._init(keys, self.arrays.context)

  def restart(self, state: TrainState) -> TrainState:
    """Stacked states with fresh optimizer and mask-updater states."""
    return self._restart(state)

  def run(self, state: TrainState, hp: optim.HParams, num_steps: int,
          staggered: bool = False) -> tuple[TrainState, jax.Array]:
    """Train every replica ``num_steps`` steps (``staggered``: replicas
    ahead of the earliest wait, see :func:`run_steps`); returns
    (state, losses[R, n]). The input state is donated (do not reuse it);
    its masks are not."""
    chex.assert_equal_shape_prefix(
        [jax.tree.leaves(state.params)[0], hp.lr], 1)
    num_replicas = hp.lr.shape[0]
    mesh = mesh_lib.mesh_for(num_replicas, self.shard)
    rest, mask = state.replace(mask=None), state.mask
    if mesh is None:
      return self._run(rest, mask, hp, self.arrays, jnp.min(state.step),
                       int(num_steps), bool(staggered), None)
    clock = np.int32(np.min(jax.device_get(state.step)))
    return self._on_mesh(self._run, (rest, mask, hp), num_replicas, mesh,
                         (clock,), (int(num_steps), bool(staggered)))

  def evaluate(self, state: TrainState) -> Evaluation:
    """Validation and test loss/score of every replica ([R] each), on the
    same replica mesh as training, so that the result does not depend on
    where the state happens to live (e.g. restored from a checkpoint)."""
    num_replicas = jax.tree.leaves(state.params)[0].shape[0]
    mesh = mesh_lib.mesh_for(num_replicas, self.shard)
    if mesh is None:
      return self._eval(state.params, state.batch_stats, self.arrays, None)
    return self._on_mesh(self._eval, (state.params, state.batch_stats),
                         num_replicas, mesh)

  def gradient_flow(self, state: TrainState, anchor: PyTree, x: jax.Array,
                    y: jax.Array) -> GradientFlow:
    """Per-replica masked gradient norm on the fixed batch (x, y) and
    distance of ``state.params`` from ``anchor`` (stacked like them), one
    compiled program at an evaluation point (no per-step host sync)."""
    num_replicas = jax.tree.leaves(state.params)[0].shape[0]
    mesh = mesh_lib.mesh_for(num_replicas, self.shard)
    args = (state.params, state.batch_stats, state.mask, anchor)
    if mesh is None:
      return self._flow(*args, self.arrays, x, y, None)
    return self._on_mesh(self._flow, args, num_replicas, mesh, (x, y))

  def _on_mesh(self, compiled: Callable, per_replica: tuple,
               num_replicas: int, mesh: Mesh, shared: tuple = (),
               static: tuple = ()) -> Any:
    """``compiled(*per_replica, data, *shared, *static, mesh)`` on ``mesh``:
    inputs placed by host transfers (replica axis padded to the mesh),
    outputs fetched back to the default device."""
    args = mesh_lib.to_global(per_replica, mesh, P(mesh_lib.REPLICA_AXIS),
                              replicas=mesh_lib.padded_count(num_replicas,
                                                             mesh))
    out = compiled(*args, self._arrays_on(mesh),
                   *mesh_lib.to_global(shared, mesh, P()), *static, mesh)
    return mesh_lib.to_host_local(out, num_replicas)

  def _arrays_on(self, mesh: Mesh) -> DataArrays:
    """The data, replicated on every device of ``mesh`` (placed once)."""
    if mesh not in self._global_arrays:
      self._global_arrays[mesh] = mesh_lib.to_global(self.arrays, mesh, P())
    return self._global_arrays[mesh]

  def train(self, state: TrainState, hp: optim.HParams, until: int,
            eval_every: int, *, stops: Iterable[int] = (),
            on_eval: Callable[[TrainState, Evaluation, np.ndarray], None]
            | None = None,
            on_stop: Callable[[int, TrainState], None] | None = None,
            progress: Any = None, staggered: bool | None = None
            ) -> TrainState:
    """Train from ``state.step`` to step ``until`` in scanned chunks.

    Chunks end at every multiple of ``eval_every``, at each step in ``stops``
    (e.g. the rewind step, where ``on_stop(step, state)`` can copy the
    state) and at ``until``. After each chunk that ends on an evaluation
    point (or at ``until``), ``on_eval(state, evaluation, chunk_losses)``,
    called before ``on_stop`` (so a checkpoint covers its metrics).
    Replicas may start at different steps (children of different rewind
    points): the chunks follow the earliest, the others wait for it to
    reach their step, and all end at ``until``. ``staggered`` (default:
    whether the replicas' steps differ now) fixes which program runs, so a
    run resumed after the replicas have caught up keeps the program it
    started with.
    """
    steps = np.asarray(jax.device_get(state.step)).reshape(-1)
    start = int(steps.min())
    if staggered is None:
      staggered = int(steps.max()) != start
    bounds = set(range(start - start % eval_every + eval_every, until,
                       eval_every)) | {until}
    bounds |= {s for s in stops if start < s < until}
    position = start
    for b in sorted(bounds):
      state, losses = self.run(state, hp, b - position, staggered)
      if progress is not None:
        progress.update(b - position)
      position = b
      # Evaluate (and log) before ``on_stop`` may checkpoint: a checkpoint
      # at step b then always covers the metrics of step b.
      if b % eval_every == 0 or b == until:
        evaluation = self.evaluate(state)
        if on_eval is not None:
          on_eval(state, evaluation, np.asarray(losses))
      if on_stop is not None and b in stops:
        on_stop(b, state)
    return state


def replica_keys(seeds: Iterable[int]) -> jax.Array:
  """One PRNG key per seed; replica i of a multi-seed run gets exactly the
  key of the single-seed run with the same seed."""
  return jnp.stack([jax.random.key(int(s)) for s in seeds])


def vmapped(fn: Callable, in_axes: Any = 0) -> Callable:
  """``fn`` written for one replica, compiled once and vectorized over the
  leading replica axis of its arguments (``in_axes`` as in ``jax.vmap``:
  ``None`` for an argument shared by all replicas): for one-off per-replica
  work outside training, such as building masks (pruning at initialization
  scores every replica in one program)."""
  return jax.jit(jax.vmap(fn, in_axes=in_axes))


def tree_index(tree: PyTree, i: int) -> PyTree:
  """Replica ``i`` of a stacked pytree."""
  return jax.tree.map(lambda x: x[i], tree)


__all__ = ["Trainer", "Evaluation", "GradientFlow", "gradient_flow",
           "run_steps", "evaluate", "over_replicas",
           "choose_replica_loop", "replica_keys", "tree_index", "vmapped",
           "REPLICA_LOOPS", "WAITING"]
