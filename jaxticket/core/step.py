"""The one training step every method plugs into, written for ONE replica.

    trainable, frozen = parametrization.split(params)      # weights or scores
    loss, grads = value_and_grad(task loss)(trainable)       # dense gradients
    params = mask * optimizer(mask * grads)                  # optax chain
    mask, sparse_state = updater.update(...)   on its update steps (lax.cond)
    params = mask * params; moments reset where the mask grew

The mask lives in the training state (the scan's carry), so a mask updater
(dynamic sparse training) changes it inside one compiled loop; a static run
(IMP, the controls) compiles no update at all. Pitfalls of masking only the
forward pass are avoided: gradients are masked before the optimizer (momentum
and Adam moments stay exactly zero at pruned positions) and params are
re-masked after every update (pruned weights and their weight decay stay
exactly zero).

Everything here is vmapped by :mod:`jaxticket.core.loop`: params, BatchNorm
statistics, optimizer state, mask, keys and :class:`~jaxticket.core.optim.
HParams` carry a leading replica axis R there.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core.augment import random_crop_flip
from jaxticket.core.parametrization import Parametrization, merge
from jaxticket.core.task import Task, mean_loss, prepare
from jaxticket.core.updater import MaskUpdater, is_static

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Per-replica training state (the carry of the training scan).

  ``mask`` is the current mask (None on non-prunable leaves);
  ``sparse_state`` is the mask updater's own state (``()`` when static).
  ``data_key`` fixes the data order and augmentation (the 'SGD noise');
  ``step`` indexes the schedule and data; ``diverged_at`` is the first step
  whose loss was NaN/Inf (-1: none), recorded inside the compiled loop.
  """
  params: PyTree
  batch_stats: PyTree
  opt_state: PyTree
  step: jax.Array
  data_key: jax.Array
  diverged_at: jax.Array
  mask: PyTree = None
  sparse_state: PyTree = ()


class Program(NamedTuple):
  """The static parts of a training program (everything but arrays).

  ``normalize`` maps a stored batch to float32 model inputs; ``prunable`` is
  the regex over parameter paths that the mask covers.
  """
  model: nn.Module
  task: Task
  recipe: optim.Recipe
  normalize: Callable[[jax.Array], jax.Array]
  parametrization: Parametrization = Parametrization()
  updater: MaskUpdater | None = None
  prunable: str = masks_lib.DEFAULT_PRUNABLE
  #: The model's training forward also gets ``step=`` (the replica's
  #: optimizer step), for what anneals inside a run, e.g. the slope of
  #: HAT-style sigmoid gates (issue 18). Evaluation never passes it.
  clocked: bool = False


class DataArrays(NamedTuple):
  """Device-resident arrays a run reads (passed un-vmapped, never closed over,
  so large datasets are not baked into the compiled program).

  ``context`` (optional) is a pytree of arrays that every forward pass reads
  whole and every replica shares, e.g. a graph's node features and edge
  list when the examples are node indices (node classification). A model
  gets it as ``model.apply(..., context=context)``; None (the default) for
  datasets whose examples carry all their inputs.
  """
  train_x: jax.Array
  train_y: jax.Array
  val_x: jax.Array
  val_y: jax.Array
  test_x: jax.Array
  test_y: jax.Array
  context: PyTree = None


SPLIT_FIELDS = DataArrays._fields[:6]


def device_arrays(data: Any) -> DataArrays:
  """The splits of a dataset (anything with ``train_x`` ... ``test_y``, and
  optionally ``context``)."""
  context = getattr(data, "context", None)
  return DataArrays(*(jnp.asarray(getattr(data, f)) for f in SPLIT_FIELDS),
                    context=None if context is None else jax.tree.map(
                        jnp.asarray, context))


def init_state(prog: Program, key: jax.Array, input_shape: tuple[int, ...],
               context: PyTree = None) -> TrainState:
  """Initialize one replica from ``key`` (split into init and data keys),
  with the dense mask and a fresh optimizer. ``context``: the data's
  shared arrays (:class:`DataArrays`), if it has any."""
  init_key, data_key = jax.random.split(key)
  variables = prog.model.init(init_key,
                              jnp.zeros((1, *input_shape), jnp.float32),
                              train=False, **context_kwargs(context))
  params = variables["params"]
  mask = masks_lib.ones(params, prog.prunable)
  state = TrainState(params=params,
                     batch_stats=variables.get("batch_stats", {}),
                     opt_state=None, step=jnp.zeros((), jnp.int32),
                     data_key=data_key, diverged_at=jnp.full((), -1, jnp.int32),
                     mask=mask, sparse_state=())
  return restart(prog, state)


def restart(prog: Program, state: TrainState) -> TrainState:
  """``state`` masked, with a fresh optimizer and updater state, e.g. after
  pruning or rewinding (as OpenLTH does: old momentum points along pruned
  directions). Frozen leaves are masked here, once: the step never touches
  them."""
  _check_updater_leaves(prog, state.params, state.mask)
  params = masks_lib.apply(state.params, state.mask)
  trainable, _ = prog.parametrization.split(params)
  sparse = () if is_static(prog.updater) else prog.updater.init(
      params, state.mask)
  return state.replace(params=params, sparse_state=sparse,
                       opt_state=optim.init_optimizer(prog.recipe, trainable))


def _check_updater_leaves(prog: Program, params: PyTree, mask: PyTree
                          ) -> None:
  """A mask updater may only change the mask of trained leaves: a frozen
  leaf it pruned could never come back (refused with the fix)."""
  if is_static(prog.updater) or not prog.parametrization.trainable:
    return
  flags = prog.parametrization.flags(params)
  frozen = [masks_lib.path_str(p) for p, m in
            jax.tree_util.tree_flatten_with_path(
                mask, is_leaf=lambda x: x is None)[0]
            if m is not None and not _leaf_at(flags, p)]
  if frozen:
    raise ValueError(
        f"masks.prunable matches frozen parameters {frozen}, but a mask "
        "updater may only prune and regrow trained ones: make "
        "masks.prunable match only the leaves the parametrization trains.")


def _leaf_at(tree: PyTree, path: tuple) -> Any:
  for key in path:
    tree = tree[getattr(key, "key", getattr(key, "idx", key))]
  return tree


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


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  return max(1, num_examples // batch_size)


def context_kwargs(context: PyTree) -> dict:
  """``{"context": context}`` for a model call, or nothing without one (so
  models that take no context are called exactly as before)."""
  return {} if context is None else {"context": context}


def apply_model(model: nn.Module, params: PyTree, batch_stats: PyTree,
                x: jax.Array, train: bool, context: PyTree = None,
                step: jax.Array | None = None
                ) -> tuple[jax.Array, PyTree]:
  """(outputs, batch_stats): in training mode with BatchNorm the updated
  running statistics, otherwise ``batch_stats`` unchanged. ``context``:
  the data's shared arrays (:class:`DataArrays`), if any; ``step``: passed
  to the model as ``step=`` when given (a :attr:`Program.clocked` model)."""
  variables = {"params": params}
  kw = context_kwargs(context)
  if step is not None:
    kw["step"] = step
  if batch_stats:
    variables["batch_stats"] = batch_stats
  if train and batch_stats:
    outputs, updates = model.apply(variables, x, train=True,
                                   mutable=["batch_stats"], **kw)
    return outputs, updates["batch_stats"]
  return model.apply(variables, x, train=train, **kw), batch_stats


def _grown(old: PyTree, new: PyTree, like: PyTree) -> PyTree:
  """Bool tree shaped like ``like``: where ``new`` keeps a weight ``old``
  did not (False on leaves without a mask or absent from ``like``)."""
  return jax.tree.map(
      lambda p, o, n: None if p is None else (
          jnp.zeros(jnp.shape(p), bool) if o is None else n & ~o),
      like, old, new, is_leaf=lambda x: x is None)


def _update_mask(prog: Program, state: TrainState, grads: PyTree,
                 update_now: jax.Array) -> TrainState:
  """Run the mask updater where this replica has an update step.

  ``update_now`` (unbatched) is whether *any* replica updates at this clock
  tick: it drives a real ``lax.cond``, so steps without updates compute
  nothing; inside, each replica keeps its new mask only on its own update
  step.
  """
  updater = prog.updater
  key = jax.random.fold_in(jax.random.split(state.data_key, 3)[2], state.step)

  def update():
    mask, sparse = updater.update(state.step, state.params, grads, state.mask,
                                  state.sparse_state, key)
    mine = updater.is_update_step(state.step)
    pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(mine, x, y), a, b)
    return pick(mask, state.mask), pick(sparse, state.sparse_state)

  # Only the mask and the updater's state pass through the cond (a cond
  # that carried the whole training state cost XLA:CPU a copy of it at
  # every step, taken or not); moments are reset outside it, a where over
  # the moments with the (all-False off-tick) growth mask.
  mask, sparse = jax.lax.cond(update_now, update,
                              lambda: (state.mask, state.sparse_state))
  trainable, _ = prog.parametrization.split(state.params)
  opt_state = optim.reset_moments(prog.recipe, state.opt_state,
                                  _grown(state.mask, mask, trainable))
  return state.replace(mask=mask, sparse_state=sparse, opt_state=opt_state)


def train_step(prog: Program, state: TrainState, hp: optim.HParams,
               arrays: DataArrays, perm: jax.Array,
               update_now: jax.Array | bool = False
               ) -> tuple[TrainState, jax.Array]:
  """One masked optimizer step for one replica; returns (state, loss).

  ``perm`` is the permutation of the epoch ``state.step`` falls in
  (:func:`epoch_permutation`), passed in so that a scan sorts once per epoch
  instead of once per step. ``update_now``: some replica's mask updater
  acts at this step (computed by the loop, unbatched).
  """
  recipe = prog.recipe
  idx = batch_indices(perm, state.step, recipe.batch_size)
  x, y = arrays.train_x[idx], arrays.train_y[idx]
  if hasattr(prog.task, "prepare"):  # e.g. MLM's masking, per step/replica
    task_key = jax.random.fold_in(jax.random.split(state.data_key, 4)[3],
                                  state.step)
    x, y = prepare(prog.task, task_key, x, y)
  x = prog.normalize(x)
  if recipe.augment:
    # A stream apart from the epoch permutations (those fold in the epoch).
    aug_key = jax.random.fold_in(jax.random.split(state.data_key)[1],
                                 state.step)
    x = random_crop_flip(aug_key, x)
  low = recipe.compute_dtype == "bfloat16"
  trainable, frozen = prog.parametrization.split(state.params)

  def loss_fn(trainable):
    params = merge(trainable, frozen)
    if low:  # master weights stay float32; gradients come back float32
      params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    outputs, new_stats = apply_model(prog.model, params, state.batch_stats,
                                     x.astype(jnp.bfloat16) if low else x,
                                     True, arrays.context,
                                     state.step if prog.clocked else None)
    new_stats = jax.tree.map(lambda n, o: n.astype(o.dtype), new_stats,
                             state.batch_stats)
    loss = mean_loss(prog.task, outputs, y, state.step)
    if prog.parametrization.penalty is not None:
      loss = loss + prog.parametrization.penalty(trainable)
    return loss, new_stats

  (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      trainable)
  optimizer = optim.make_optimizer(recipe, hp, state.step)
  updates, opt_state = optimizer.update(
      masks_lib.apply(grads, state.mask), state.opt_state, trainable)
  trainable = optax.apply_updates(trainable, updates)
  if prog.parametrization.project is not None:
    trainable = prog.parametrization.project(trainable)
  params = merge(trainable, frozen)
  diverged_at = jnp.where((state.diverged_at < 0) & ~jnp.isfinite(loss),
                          state.step, state.diverged_at)
  state = state.replace(params=params, batch_stats=new_stats,
                        opt_state=opt_state, diverged_at=diverged_at)
  if not is_static(prog.updater):
    # Under the old mask first, so that weights the update regrows start
    # at zero (Evci et al. 2020) rather than at this step's stale update.
    state = state.replace(params=_remask(prog, state.params, state.mask))
    state = _update_mask(prog, state, grads, update_now)
  return state.replace(params=_remask(prog, state.params, state.mask),
                       step=state.step + 1), loss


def _remask(prog: Program, params: PyTree, mask: PyTree) -> PyTree:
  """``params`` with pruned *trained* entries zeroed; frozen leaves pass
  untouched (they were masked once, by :func:`restart`)."""
  if not prog.parametrization.trainable:
    return masks_lib.apply(params, mask)
  trainable, frozen = prog.parametrization.split(params)
  return merge(masks_lib.apply(trainable, mask), frozen)


__all__ = ["TrainState", "Program", "DataArrays", "device_arrays",
           "init_state", "restart", "epoch_permutation", "batch_indices",
           "steps_per_epoch", "apply_model", "context_kwargs", "train_step",
           "SPLIT_FIELDS"]
