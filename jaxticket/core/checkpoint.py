"""Checkpoints with orbax: level artifacts and resumable training state.

:func:`save_tree` / :func:`load_tree` store a run's lasting artifacts (theta_0,
theta_k, each level's masks and weights); :class:`TrainCheckpoints` keeps the
rolling training checkpoints a killed run resumes from. Arrays keep their
replica axis. ``None`` leaves (non-prunable mask entries) round-trip as
``None``.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxticket.core import runtime

PyTree = Any


def _this_process_only() -> ocp.options.MultiprocessingOptions:
  """Every process checkpoints its own replicas (multi-host sweeps run
  different programs per process), so orbax must not wait for the others."""
  me = jax.process_index()
  return ocp.options.MultiprocessingOptions(
      primary_host=me, active_processes={me},
      barrier_sync_key_prefix=f"jaxticket_p{me}")


def save_tree(path: str, tree: PyTree) -> None:
  """Save ``tree`` to directory ``path`` (replacing it), blocking. A
  no-op in processes that do not write (:func:`runtime.writes_files`)."""
  if not runtime.writes_files():
    return
  path = os.path.abspath(path)
  checkpointer = ocp.StandardCheckpointer(
      multiprocessing_options=_this_process_only())
  checkpointer.save(path, jax.device_get(tree), force=True)
  checkpointer.wait_until_finished()
  checkpointer.close()


def load_tree(path: str) -> PyTree:
  """Load a tree saved by :func:`save_tree` as host arrays."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f"No checkpoint at {path}.")
  checkpointer = ocp.StandardCheckpointer(
      multiprocessing_options=_this_process_only())
  try:
    return checkpointer.restore(path)
  except Exception as e:  # orbax/tensorstore raise many kinds
    raise CheckpointError(
        f"The checkpoint at {path} is unreadable ({type(e).__name__}: "
        f"{str(e).splitlines()[0][:200] if str(e) else ''}). It was damaged "
        "after it was written; rerun in a new --workdir (or delete the "
        "run's checkpoints/ to recompute).") from None
  finally:
    checkpointer.close()


# --------------------------------------------------------------------------
# Mid-run training checkpoints: resumable runs.

#: Test hook: ``JAXTICKET_FAULT=kill_after_save:N`` (or ``kill_during_save:N``)
#: SIGKILLs the process after the N-th training checkpoint is written (or
#: while it is being written). Used by the fault-injection tests.
FAULT_ENV = "JAXTICKET_FAULT"


class CheckpointError(RuntimeError):
  """No usable training checkpoint although some exist."""


class CheckpointMismatch(CheckpointError):
  """A readable checkpoint whose arrays differ from this run's state."""


#: Characters the flat layout of earlier versions replaced by ``_`` in keys.
_LEGACY_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
_LEGACY_CHAIN = re.compile(r"\.opt_state\.\d+\.")


def _is_key(x: Any) -> bool:
  """Whether ``x`` is a typed PRNG key array (``jax.random.key``)."""
  return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype,
                                                     jax.dtypes.prng_key)


def _stored(x: Any) -> np.ndarray:
  """A leaf as written: a host array (as :func:`save_tree` writes), so a
  typed PRNG key as its raw ``key_data``, re-wrapped like the template on
  restore (a host array cannot hold a typed key)."""
  return np.asarray(jax.device_get(jax.random.key_data(x) if _is_key(x)
                                   else x))


def _abstract(t: Any) -> jax.ShapeDtypeStruct:
  """What template leaf ``t`` is stored as (orbax maps a PRNG key to its key
  data), restored onto the default device, where the run keeps its state."""
  s = ocp.tree.to_shape_dtype_struct(t)
  return jax.ShapeDtypeStruct(
      s.shape, s.dtype,
      sharding=jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))


def _like(x: Any, t: Any) -> jax.Array:
  """A restored leaf as template leaf ``t`` holds it (keys re-wrapped)."""
  if _is_key(t):
    return jax.random.wrap_key_data(jnp.asarray(x), impl=jax.random.key_impl(t))
  return jnp.asarray(x)


def _check(stored: dict, name: str, want: jax.ShapeDtypeStruct) -> None:
  """Raise :class:`CheckpointError` unless the checkpoint's array ``name``
  (``stored``: metadata by dotted name) has ``want``'s shape and dtype."""
  have = stored.get(name)
  if not hasattr(have, "shape"):
    raise CheckpointMismatch(f"checkpoint lacks {name!r}")
  if (tuple(have.shape), np.dtype(have.dtype)) != (want.shape, want.dtype):
    raise CheckpointMismatch(
        f"{name!r} is {np.dtype(have.dtype)}{list(have.shape)} in the "
        f"checkpoint but {want.dtype}{list(want.shape)} in this run's state")


def _is_legacy(stored_tree: Any) -> bool:
  """Whether a checkpoint has the flat layout of earlier versions: one dict
  keyed by dotted leaf paths (``state.params.Dense_0.kernel``), PRNG keys as
  key data, written before checkpoints were stored as the tree itself."""
  return isinstance(stored_tree, dict) and any("." in k for k in stored_tree)


def _legacy_name(name: str) -> str:
  """The flat layout's key for a leaf with orbax parameter name ``name``.
  Earlier versions kept one optimizer transform's state where the optax
  chain now keeps a tuple (``opt_state.1.trace`` was ``opt_state.trace``)."""
  flat = _LEGACY_UNSAFE.sub("_", name.replace("/", "."))
  return _LEGACY_CHAIN.sub(".opt_state.", flat)


class TrainCheckpoints:
  """Training checkpoints of one run, kept by an orbax ``CheckpointManager``.

  A checkpoint holds any pytree (the whole replica-axis train state: params,
  BatchNorm statistics, optimizer state, step, PRNG data keys, divergence
  steps; and the masks) under an integer *position* that grows through the
  run. Orbax writes each checkpoint to a temporary directory and renames it
  when complete, so a kill during a write leaves the previous checkpoints
  intact. ``keep`` newest checkpoints are kept (older ones deleted).
  """
  #: Saves by every manager of this process (the fault-injection hook,
  #: ``JAXTICKET_FAULT=kill_after_save:N``, counts across a run's stages).
  saves = 0

  def __init__(self, directory: str, keep: int = 2):
    self.directory = os.path.abspath(directory)
    os.makedirs(self.directory, exist_ok=True)
    # The handler is registered up front (not on first use) so that a
    # resuming process can read a checkpoint's metadata before restoring it.
    handler = ocp.StandardCheckpointHandler(
        multiprocessing_options=_this_process_only())
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
      registry.add(ocp.checkpoint_manager.DEFAULT_ITEM_NAME, args, handler)
    # Async writes (so that a kill can land mid-write, as the fault tests
    # need) only in a one-process job: in a multi-process job orbax's async
    # commit signalling goes through the shared jax.distributed key-value
    # store and once hung a process of a two-process split sweep (every
    # save is waited for at once anyway, so nothing is lost).
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=False,
            enable_async_checkpointing=jax.process_count() == 1,
            multiprocessing_options=_this_process_only()),
        handler_registry=registry)

  def save(self, position: int, tree: PyTree) -> None:
    """Write ``tree`` at ``position`` (in the background; the previous
    write is finished first). Only in processes that write files."""
    if not runtime.writes_files():
      return
    self.manager.wait_until_finished()
    self.manager.save(
        position, args=ocp.args.StandardSave(jax.tree.map(_stored, tree)),
        force=True)
    TrainCheckpoints.saves += 1
    self._fault("kill_during_save")
    self.manager.wait_until_finished()
    self._fault("kill_after_save")

  def _fault(self, kind: str) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if (spec.startswith(kind + ":")
        and TrainCheckpoints.saves == int(spec.split(":")[1])):
      os.kill(os.getpid(), signal.SIGKILL)

  def positions(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore(self, position: int, template: PyTree) -> PyTree:
    """The checkpoint at ``position`` as a tree shaped and typed like
    ``template`` (restored by orbax into the template's abstract tree);
    :class:`CheckpointError` if its arrays differ from the template's in
    name, shape or dtype. Checkpoints in the flat layout of earlier
    versions are read too (:func:`_is_legacy`)."""
    metadata = self.manager.item_metadata(position)
    if metadata is None:
      raise CheckpointError("checkpoint lacks its tree metadata")
    stored_tree = metadata.tree
    stored = ocp.tree.to_flat_dict(stored_tree, sep=".")
    names = ocp.tree.get_param_names(template, include_empty_nodes=False)
    abstract = jax.tree.map(_abstract, template)
    legacy = _is_legacy(stored_tree)
    if legacy:
      names = jax.tree.map(_legacy_name, names)
    jax.tree.map(lambda name, want: _check(stored, name, want), names,
                 abstract)
    if legacy:
      flat = self.manager.restore(position, args=ocp.args.StandardRestore())
      tree = jax.tree.map(lambda name: flat[name], names)
    else:
      extra = sorted(set(stored) - set(jax.tree.leaves(names)))
      if extra:
        raise CheckpointMismatch(f"checkpoint holds {extra[0]!r}, which this "
                                 "run's state lacks")
      tree = self.manager.restore(position,
                                  args=ocp.args.StandardRestore(abstract))
    return jax.tree.map(_like, tree, template)

  def restore_latest(self, template: PyTree,
                     warn=None) -> tuple[int, PyTree] | None:
    """(position, tree) of the newest readable checkpoint, or None if there
    is none. Unreadable (corrupt, truncated) ones are reported through
    ``warn``, deleted, and the next older one is tried; if checkpoints exist
    but none is readable, :class:`CheckpointError`. A readable checkpoint
    of another state structure (another version or program) is never
    deleted: :class:`CheckpointError` says so."""
    positions = self.positions()
    problems = []
    for position in reversed(positions):
      try:
        return position, self.restore(position, template)
      except CheckpointMismatch as e:
        raise CheckpointError(
            f"checkpoint {position} in {self.directory} holds a different "
            f"training state than this run ({e}); it was written by another "
            "version of jaxticket or another config. Resume it with that "
            "version, or use a new --workdir (nothing was deleted).") from None
      except Exception as e:  # orbax/tensorstore raise many kinds
        problem = (f"checkpoint {position} in {self.directory} is unreadable "
                   f"({type(e).__name__}: {str(e).splitlines()[0][:200]})")
        problems.append(problem)
        if warn is not None:
          warn(problem + "; falling back to the previous one.")
        if runtime.writes_files():
          self.manager.delete(position)
    if problems:
      raise CheckpointError(
          "No usable training checkpoint: " + "; ".join(problems) + ". "
          "Delete " + self.directory + " to start the run over, or use a new "
          "--workdir.")
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
