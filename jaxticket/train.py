"""Training: one jit-compiled masked step, a run is ``lax.scan`` over steps.

Everything here is written for ONE replica and vectorized with ``jax.vmap``:
params, BatchNorm statistics, optimizer state, mask, PRNG keys and the
hyperparameters that may differ between replicas (:class:`HParams`: learning
rate, weight decay) all carry a leading replica axis R. Seeds, learning rates
and sparsities therefore run as one compiled program.

Masking (the pitfalls of masking only the forward pass): gradients are masked
before the optimizer, so momentum and Adam moments stay exactly zero at pruned
positions, and params are re-masked after every update, so pruned weights
(and their weight decay) stay exactly zero.

Optimizers return an update *direction*; the step scales it by
``-hparams.lr * schedule(step)``. For SGD (PyTorch-style momentum), Adam and
AdamW this equals the usual update and keeps the learning rate a traced,
per-replica value, so one program serves a whole LR grid.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, NamedTuple

import chex
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxticket import masks as masks_lib
from jaxticket import runtime
from jaxticket.data import Dataset, random_crop_flip

PyTree = Any

OPTIMIZERS = ("sgd", "adam", "adamw")
COMPUTE_DTYPES = ("float32", "bfloat16")
SCHEDULES = ("constant", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The static part of a training recipe (shapes and program structure).

  Attributes:
    steps: total optimizer steps of one training run.
    batch_size: examples per step.
    optimizer: ``sgd`` (momentum, coupled L2 like PyTorch), ``adam`` (coupled
      L2) or ``adamw`` (decoupled weight decay, Loshchilov & Hutter 2019).
    momentum: SGD momentum / Adam beta1.
    nesterov: Nesterov momentum for SGD.
    schedule: ``constant``, ``step`` (multiply by ``gamma`` at each milestone)
      or ``cosine`` (to zero at ``steps``).
    milestones: fractions of ``steps`` where the step schedule decays.
    gamma: step-schedule decay factor.
    warmup_steps: linear warm-up from 0 over this many steps.
    augment: random crop + flip (images only).
    compute_dtype: ``float32``, or ``bfloat16`` for the forward and backward
      pass on accelerators (weights, optimizer state and BatchNorm
      statistics stay float32: "master weights"; the loss is float32).
  """
  steps: int
  batch_size: int = 128
  optimizer: str = "sgd"
  momentum: float = 0.9
  nesterov: bool = False
  schedule: str = "constant"
  milestones: tuple[float, ...] = (0.5, 0.75)
  gamma: float = 0.1
  warmup_steps: int = 0
  augment: bool = False
  compute_dtype: str = "float32"


class HParams(NamedTuple):
  """Hyperparameters that may differ between replicas (traced scalars)."""
  lr: jax.Array
  weight_decay: jax.Array


@flax.struct.dataclass
class TrainState:
  """Per-replica training state. ``data_key`` fixes the data order and
  augmentation (the 'SGD noise'); ``step`` indexes the schedule and data;
  ``diverged_at`` is the first step whose loss was NaN/Inf (-1: none),
  recorded inside the compiled loop."""
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree
  step: jax.Array
  data_key: jax.Array
  diverged_at: jax.Array


def lr_factor(step: jax.Array, recipe: Recipe) -> jax.Array:
  """Schedule multiplier at ``step`` (the LR is ``hparams.lr`` times this)."""
  step = jnp.asarray(step, jnp.float32)
  if recipe.schedule == "constant":
    f = jnp.ones_like(step)
  elif recipe.schedule == "step":
    f = jnp.ones_like(step)
    for m in recipe.milestones:
      f = f * jnp.where(step >= round(m * recipe.steps), recipe.gamma, 1.0)
  elif recipe.schedule == "cosine":
    f = 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(step / recipe.steps, 1.0)))
  else:
    raise ValueError(f"Unknown schedule {recipe.schedule!r}; choose one of "
                     f"{SCHEDULES}.")
  if recipe.warmup_steps > 0:
    f = f * jnp.minimum(1.0, (step + 1) / recipe.warmup_steps)
  return f


def make_direction(recipe: Recipe) -> optax.GradientTransformation:
  """Optimizer transform producing an update direction (no LR, no sign)."""
  if recipe.optimizer == "sgd":
    return optax.trace(decay=recipe.momentum, nesterov=recipe.nesterov)
  if recipe.optimizer in ("adam", "adamw"):
    return optax.scale_by_adam(b1=recipe.momentum)
  raise ValueError(f"Unknown optimizer {recipe.optimizer!r}; choose one of "
                   f"{OPTIMIZERS}.")


def init_state(model: nn.Module, key: jax.Array, input_shape: tuple[int, ...],
               recipe: Recipe) -> TrainState:
  """Initialize one replica from ``key`` (split into init and data keys)."""
  init_key, data_key = jax.random.split(key)
  variables = model.init(init_key, jnp.zeros((1, *input_shape), jnp.float32),
                         train=False)
  params = variables["params"]
  return TrainState(params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=make_direction(recipe).init(params),
                    step=jnp.zeros((), jnp.int32), data_key=data_key,
                    diverged_at=jnp.full((), -1, jnp.int32))


def fresh_optimizer(state: TrainState, recipe: Recipe) -> TrainState:
  """Reset optimizer moments (after pruning/rewinding, as OpenLTH does)."""
  return state.replace(opt_state=make_direction(recipe).init(state.params))


def fresh_optimizer_stacked(state: TrainState, recipe: Recipe) -> TrainState:
  """:func:`fresh_optimizer` for stacked (replica-axis) states."""
  return state.replace(
      opt_state=jax.vmap(make_direction(recipe).init)(state.params))


class DataArrays(NamedTuple):
  """Device-resident arrays a run reads (passed un-vmapped, never closed over,
  so large datasets are not baked into the compiled program)."""
  train_x: jax.Array
  train_y: jax.Array
  val_x: jax.Array
  val_y: jax.Array
  test_x: jax.Array
  test_y: jax.Array


def device_arrays(data: Dataset) -> DataArrays:
  return DataArrays(*(jnp.asarray(a) for a in (
      data.train_x, data.train_y, data.val_x, data.val_y, data.test_x,
      data.test_y)))


def epoch_permutation(data_key: jax.Array, epoch: jax.Array,
                      num_examples: int) -> jax.Array:
  """The data order of one epoch: a permutation keyed by (data_key, epoch)."""
  return jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                num_examples)


def batch_indices(perm: jax.Array, step: jax.Array, batch_size: int
                  ) -> jax.Array:
  """Indices of the batch at ``step`` given its epoch's permutation. Batches
  are consumed in order; the last incomplete batch of an epoch is dropped."""
  pos = step % (perm.shape[0] // batch_size)
  return jax.lax.dynamic_slice(perm, (pos * batch_size,), (batch_size,))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


class Task(NamedTuple):
  """What the pure functions below need besides arrays: the model, how to
  normalize inputs, and the static recipe."""
  model: nn.Module
  normalize: Callable[[jax.Array], jax.Array]
  recipe: Recipe


def _apply(task: Task, params, batch_stats, x, train: bool):
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  if train and batch_stats:
    logits, updates = task.model.apply(variables, x, train=True,
                                       mutable=["batch_stats"])
    return logits, updates["batch_stats"]
  return task.model.apply(variables, x, train=train), batch_stats


def train_step(task: Task, state: TrainState, mask: PyTree, hp: HParams,
               arrays: DataArrays, perm: jax.Array
               ) -> tuple[TrainState, jax.Array]:
  """One masked optimizer step for one replica; returns (state, loss).

  ``perm`` is the permutation of the epoch ``state.step`` falls in
  (:func:`epoch_permutation`); passing it in lets a scan sort once per epoch
  instead of once per step.
  """
  recipe = task.recipe
  idx = batch_indices(perm, state.step, recipe.batch_size)
  x = task.normalize(arrays.train_x[idx])
  if recipe.augment:
    # A stream apart from the epoch permutations (those fold in the epoch).
    aug_key = jax.random.fold_in(jax.random.split(state.data_key)[1],
                                 state.step)
    x = random_crop_flip(aug_key, x)
  y = arrays.train_y[idx]

  low = recipe.compute_dtype == "bfloat16"

  def loss_fn(params):
    if low:  # master weights stay float32; gradients come back float32
      params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    logits, new_stats = _apply(task, params, state.batch_stats,
                               x.astype(jnp.bfloat16) if low else x, True)
    new_stats = jax.tree.map(lambda n, o: n.astype(o.dtype), new_stats,
                             state.batch_stats)
    return cross_entropy(logits.astype(jnp.float32), y), new_stats

  (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  grads = masks_lib.apply(grads, mask)
  if recipe.optimizer != "adamw":  # coupled L2, as torch.optim.SGD/Adam
    grads = jax.tree.map(lambda g, p: g + hp.weight_decay * p, grads,
                         state.params)
  direction, opt_state = make_direction(recipe).update(grads, state.opt_state,
                                                       state.params)
  if recipe.optimizer == "adamw":  # decoupled weight decay
    direction = jax.tree.map(lambda d, p: d + hp.weight_decay * p, direction,
                             state.params)
  lr = hp.lr * lr_factor(state.step, recipe)
  params = jax.tree.map(lambda p, d: p - lr * d, state.params, direction)
  params = masks_lib.apply(params, mask)
  diverged_at = jnp.where((state.diverged_at < 0) & ~jnp.isfinite(loss),
                          state.step, state.diverged_at)
  return state.replace(params=params, batch_stats=new_stats,
                       opt_state=opt_state, step=state.step + 1,
                       diverged_at=diverged_at), loss


REPLICA_LOOPS = ("auto", "vmap", "map")

#: Loss reported for the steps a staggered replica waits (a cross-entropy is
#: never negative, and NaN/Inf mean divergence).
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


def run_steps(task: Task, state: TrainState, mask: PyTree, hp: HParams,
              arrays: DataArrays, num_steps: int, replica_loop: str = "vmap",
              staggered: bool = False, clock_start: jax.Array | None = None
              ) -> tuple[TrainState, jax.Array]:
  """``num_steps`` steps of R stacked replicas as one ``lax.scan``.

  Returns (state, losses[R, num_steps]). The scan carries each replica's
  current epoch permutation and recomputes it (under an unbatched
  ``lax.cond``) only when some replica enters a new epoch. Replicas may be
  at different steps (e.g. different rewind points). With ``staggered``, a
  clock starts at the earliest replica's step and a replica waits (state
  unchanged, loss :data:`WAITING`) until the clock reaches its own step, so
  replicas that start later finish together with the others.
  """
  n, bs = arrays.train_x.shape[0], task.recipe.batch_size
  perms_of = jax.vmap(lambda k, e: epoch_permutation(k, e, n))
  epoch0 = _epoch(state.step, n, bs)
  step_all = over_replicas(
      lambda s, m, h, p: train_step(task, s, m, h, arrays, p), replica_loop,
      (0, 0, 0, 0))

  def body(carry, clock):
    s, perms, cached = carry
    epoch = _epoch(s.step, n, bs)
    stale = epoch != cached
    perms = jax.lax.cond(
        jnp.any(stale),
        lambda: jnp.where(stale[:, None], perms_of(s.data_key, epoch), perms),
        lambda: perms)
    new, loss = step_all(s, mask, hp, perms)
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


def evaluate(task: Task, params: PyTree, batch_stats: PyTree, x: jax.Array,
             y: jax.Array, batch_size: int = 1000) -> tuple[jax.Array, jax.Array]:
  """(mean loss, accuracy) of one replica on (x, y), in fixed-size batches."""
  n = x.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(
      (num_batches, batch_size) + x.shape[1:])
  ys = jnp.pad(y, (0, pad)).reshape(num_batches, batch_size)
  valid = (jnp.arange(num_batches * batch_size) < n).reshape(ys.shape)

  def one(args):
    xb, yb, vb = args
    logits, _ = _apply(task, params, batch_stats, task.normalize(xb), False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
    correct = jnp.argmax(logits, -1) == yb
    return jnp.sum(losses * vb), jnp.sum(correct * vb)

  losses, correct = jax.lax.map(one, (xs, ys, valid))
  return jnp.sum(losses) / n, jnp.sum(correct) / n


class Evaluation(NamedTuple):
  """Per-replica metrics of one evaluation (arrays with a replica axis)."""
  val_loss: jax.Array
  val_accuracy: jax.Array
  test_loss: jax.Array
  test_accuracy: jax.Array


REPLICA_AXIS = "replica"


def replica_mesh(num_replicas: int, devices: list | None = None
                 ) -> Mesh | None:
  """A 1-D mesh (axis ``replica``) over ``min(num_replicas, #devices)``
  local devices; None when that is one. Replicas that do not divide evenly
  over it are padded (:func:`to_global`)."""
  devices = list(devices if devices is not None else jax.local_devices())
  d = min(num_replicas, len(devices))
  return None if d <= 1 else Mesh(np.array(devices[:d]), (REPLICA_AXIS,))


def devices_per_process(num_replicas: int, processes: int,
                        local_devices: int) -> int:
  """Devices each process gives a host-spanning program: as many as the
  replicas can use (``ceil(R / processes)``), at most ``local_devices``,
  at least one (every process takes part)."""
  return max(1, min(local_devices, -(-num_replicas // processes)))


def host_spanning_mesh(num_replicas: int) -> Mesh:
  """A 1-D mesh (axis ``replica``) over the same number of devices of
  *every* process (:func:`devices_per_process`), for a host-spanning job
  (:func:`jaxticket.runtime.spans_hosts`)."""
  by_process: dict[int, list] = {}
  for d in jax.devices():
    by_process.setdefault(d.process_index, []).append(d)
  q = devices_per_process(num_replicas, len(by_process),
                          min(len(v) for v in by_process.values()))
  return Mesh(np.array([d for p in sorted(by_process)
                        for d in by_process[p][:q]]), (REPLICA_AXIS,))


def padded_count(num_replicas: int, mesh: Mesh) -> int:
  """The replica count rounded up to a multiple of the mesh's size."""
  return -(-num_replicas // mesh.size) * mesh.size


def _is_key(x: jax.Array) -> bool:
  return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_global(tree: PyTree, mesh: Mesh, spec: P,
              replicas: int | None = None) -> PyTree:
  """Arrays (the same values in every process) placed on ``mesh`` as laid
  out by ``spec``, each process filling its own devices' shards from host
  memory: plain transfers, never a collective. ``replicas``: first grow the
  leading axis to that size by repeating the last replica (padding to a
  multiple of the mesh; the copies are dropped by :func:`to_host_local`),
  so e.g. 9 replicas run as 5 + 5 on two devices instead of 9 on one."""
  sharding = NamedSharding(mesh, spec)

  def put(x):
    if _is_key(x):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)),
                                      impl=jax.random.key_impl(x))
    host = np.asarray(jax.device_get(x))
    if replicas is not None and replicas > host.shape[0]:
      host = np.concatenate(
          [host, np.repeat(host[-1:], replicas - host.shape[0], axis=0)])
    return jax.make_array_from_callback(host.shape, sharding,
                                        lambda index: host[index])

  return jax.tree.map(put, tree)


def to_host_local(tree: PyTree, replicas: int | None = None) -> PyTree:
  """Arrays laid out over a mesh, fetched whole into this process (shard
  by shard; across processes with ``process_allgather``, a collective every
  process must call), keeping the first ``replicas`` (inverse of
  :func:`to_global`). The results live on the default device, so whatever
  runs on them next needs no cross-device communication."""
  leaves, treedef = jax.tree.flatten(tree)
  impls = [jax.random.key_impl(x) if _is_key(x) else None for x in leaves]
  data = [jax.random.key_data(x) if i else x for x, i in zip(leaves, impls)]
  if all(x.is_fully_addressable for x in data):
    gathered = jax.device_get(data)
  else:
    gathered = multihost_utils.process_allgather(data, tiled=True)
  cut = slice(None) if replicas is None else slice(0, replicas)
  out = [jnp.asarray(np.asarray(g)[cut]) for g in gathered]
  out = [jax.random.wrap_key_data(g, impl=i) if i else g
         for g, i in zip(out, impls)]
  return jax.tree.unflatten(treedef, out)


class Trainer:
  """Compiled, vmapped training and evaluation for one task.

  All methods take and return *stacked* pytrees (leading replica axis). The
  compiled functions are built once per Trainer and reused for every level,
  learning rate and seed, since those are data, not program structure.

  With several local devices (GPUs, TPU cores, or simulated CPU devices,
  ``train.cpu_devices``) and ``shard``, training shards the replica axis over
  a :func:`replica_mesh` with ``jax.shard_map``: each device runs the scan
  over its own replicas, with no communication inside the loop; inputs are
  placed and results fetched back by transfers (:meth:`_on_mesh`), so all
  host-side code (pruning, logging, checkpoints) sees single-device arrays.
  In a host-spanning job (``jaxticket sweep --distributed --span-hosts``)
  the mesh holds devices of every process (:func:`host_spanning_mesh`) and
  the results are gathered whole into every process.
  """

  def __init__(self, model: nn.Module, data: Dataset, recipe: Recipe,
               eval_batch_size: int = 1000, replica_loop: str = "auto",
               shard: bool = True):
    self.data = data
    self.recipe = recipe
    self.task = Task(model, data.normalize, recipe)
    self.arrays = device_arrays(data)
    self.eval_batch_size = eval_batch_size
    task = self.task
    init_one = lambda k: init_state(model, k, data.input_shape, recipe)
    self.replica_loop = loop = choose_replica_loop(replica_loop)
    self.shard = shard
    self._init = jax.jit(jax.vmap(init_one))

    def run(s, m, h, a, clock, n, staggered, mesh):
      # ``clock``: the earliest replica's step, computed by the caller so
      # that the sharded program holds no collective at all.
      fn = lambda s, m, h, a, c: run_steps(task, s, m, h, a, n, loop,
                                          staggered, c)
      if mesh is not None:  # each device scans its own replicas
        rep = P(REPLICA_AXIS)
        fn = jax.shard_map(fn, mesh=mesh, in_specs=(rep, rep, rep, P(), P()),
                           out_specs=(rep, rep), check_vma=False)
      return fn(s, m, h, a, clock)

    self._run = jax.jit(run, static_argnums=(5, 6, 7), donate_argnums=0)
    ev = lambda p, b, x, y: evaluate(task, p, b, x, y, eval_batch_size)
    ev_all = over_replicas(
        lambda p, b, a: Evaluation(*ev(p, b, a.val_x, a.val_y),
                                   *ev(p, b, a.test_x, a.test_y)),
        loop, (0, 0, None))

    def evaluate_all(p, b, a, mesh):
      fn = ev_all
      if mesh is not None:
        rep = P(REPLICA_AXIS)
        fn = jax.shard_map(fn, mesh=mesh, in_specs=(rep, rep, P()),
                           out_specs=rep, check_vma=False)
      return fn(p, b, a)

    self._eval = jax.jit(evaluate_all, static_argnums=3)
    self._global_arrays: dict[Mesh, DataArrays] = {}

  def init(self, keys: jax.Array) -> TrainState:
    """Stacked initial states, one per key (``jax.random.key`` per seed)."""
    return self._init(keys)

  def run(self, state: TrainState, mask: PyTree, hp: HParams, num_steps: int,
          staggered: bool = False) -> tuple[TrainState, jax.Array]:
    """Train every replica ``num_steps`` steps (``staggered``: replicas
    ahead of the earliest wait, see :func:`run_steps`); returns
    (state, losses[R, n]). The input state is donated (do not reuse it)."""
    chex.assert_equal_shape_prefix(
        [jax.tree.leaves(state.params)[0], hp.lr], 1)
    num_replicas = hp.lr.shape[0]
    mesh = self._mesh(num_replicas)
    if mesh is None:
      return self._run(state, mask, hp, self.arrays, jnp.min(state.step),
                       int(num_steps), bool(staggered), None)
    clock = np.int32(np.min(jax.device_get(state.step)))
    return self._on_mesh(self._run, (state, mask, hp), num_replicas, mesh,
                         (clock,), (int(num_steps), bool(staggered)))

  def evaluate(self, state: TrainState) -> Evaluation:
    """Validation and test loss/accuracy of every replica ([R] each), on
    the same replica mesh as training, so that the result does not depend
    on where the state happens to live (e.g. restored from a checkpoint)."""
    num_replicas = jax.tree.leaves(state.params)[0].shape[0]
    mesh = self._mesh(num_replicas)
    if mesh is None:
      return self._eval(state.params, state.batch_stats, self.arrays, None)
    return self._on_mesh(self._eval, (state.params, state.batch_stats),
                         num_replicas, mesh)

  def _on_mesh(self, compiled: Callable, per_replica: tuple,
               num_replicas: int, mesh: Mesh, shared: tuple = (),
               static: tuple = ()) -> Any:
    """``compiled(*per_replica, data, *shared, *static, mesh)`` on ``mesh``.

    Inputs are placed by host transfers (replica axis padded to the mesh,
    :func:`to_global`) and outputs fetched back to the default device
    (:func:`to_host_local`): the only cross-device work is these transfers,
    never an XLA collective (on simulated CPU devices a collective can
    stall when the shared thread pool is busy), and whatever runs next
    sees ordinary single-device arrays, exactly as without a mesh.
    """
    args = to_global(per_replica, mesh, P(REPLICA_AXIS),
                     replicas=padded_count(num_replicas, mesh))
    out = compiled(*args, self._arrays_on(mesh),
                   *to_global(shared, mesh, P()), *static, mesh)
    return to_host_local(out, num_replicas)

  def _mesh(self, num_replicas: int) -> Mesh | None:
    if not self.shard:
      return None
    if runtime.spans_hosts():
      return host_spanning_mesh(num_replicas)
    return replica_mesh(num_replicas)

  def _arrays_on(self, mesh: Mesh) -> DataArrays:
    """The data, replicated on every device of ``mesh`` (placed once)."""
    if mesh not in self._global_arrays:
      self._global_arrays[mesh] = to_global(self.arrays, mesh, P())
    return self._global_arrays[mesh]

  def train(self, state: TrainState, mask: PyTree, hp: HParams, until: int,
            eval_every: int, *, stops: Iterable[int] = (),
            on_eval: Callable[[TrainState, Evaluation, np.ndarray], None]
            | None = None,
            on_stop: Callable[[int, TrainState], None] | None = None,
            progress: Any = None) -> TrainState:
    """Train from ``state.step`` to step ``until`` in scanned chunks.

    Chunks end at every multiple of ``eval_every``, at each step in ``stops``
    (e.g. the rewind step, where ``on_stop(step, state)`` can copy the
    state) and at ``until``. After each chunk that ends on an evaluation
    point (or at ``until``), ``on_eval(state, evaluation, chunk_losses)``,
    called before ``on_stop`` (so a checkpoint covers its metrics).
    Replicas may start at different steps (children of different rewind
    points): the chunks follow the earliest, the others wait for it to
    reach their step, and all end at ``until``.
    """
    steps = np.asarray(jax.device_get(state.step)).reshape(-1)
    start = int(steps.min())
    staggered = int(steps.max()) != start
    bounds = set(range(start - start % eval_every + eval_every, until,
                       eval_every)) | {until}
    bounds |= {s for s in stops if start < s < until}
    position = start
    for b in sorted(bounds):
      state, losses = self.run(state, mask, hp, b - position, staggered)
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


def stack_hparams(lr: Iterable[float], weight_decay: Iterable[float]
                  ) -> HParams:
  """HParams with a replica axis from per-replica Python floats."""
  return HParams(jnp.asarray(list(lr), jnp.float32),
                 jnp.asarray(list(weight_decay), jnp.float32))


def replica_keys(seeds: Iterable[int]) -> jax.Array:
  """One PRNG key per seed; replica i of a multi-seed run gets exactly the
  key of the single-seed run with the same seed."""
  return jnp.stack([jax.random.key(int(s)) for s in seeds])


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  return max(1, num_examples // batch_size)


def tree_index(tree: PyTree, i: int) -> PyTree:
  """Replica ``i`` of a stacked pytree."""
  return jax.tree.map(lambda x: x[i], tree)


__all__ = ["Recipe", "HParams", "TrainState", "Trainer", "Evaluation",
           "lr_factor", "init_state", "fresh_optimizer", "fresh_optimizer_stacked",
           "train_step",
           "epoch_permutation", "batch_indices",
           "run_steps", "evaluate", "stack_hparams", "replica_keys",
           "tree_index", "steps_per_epoch", "replica_mesh",
           "host_spanning_mesh", "padded_count", "to_global",
           "to_host_local"]
