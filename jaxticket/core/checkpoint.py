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
from jaxticket.core.masks import path_str

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


def _key_name(path: tuple) -> str:
  """A tree path as a flat, file-safe key (``state.params.Dense_0.kernel``)."""
  return re.sub(r"[^A-Za-z0-9_.]", "_", path_str(path).replace("/", "."))


def flatten(tree: PyTree) -> dict[str, np.ndarray]:
  """Host arrays by dotted path; PRNG keys as their raw ``key_data``."""
  out = {}
  for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    out[_key_name(path)] = np.asarray(jax.device_get(x))
  return out


def unflatten(flat: dict, template: PyTree) -> PyTree:
  """Inverse of :func:`flatten`, shaped and typed like ``template``."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(template)
  leaves = []
  for path, t in paths:
    name = _key_name(path)
    if name not in flat:
      raise CheckpointError(f"checkpoint lacks {name!r}")
    x = np.asarray(flat[name])
    if jnp.issubdtype(jnp.asarray(t).dtype, jax.dtypes.prng_key):
      leaves.append(jax.random.wrap_key_data(
          jnp.asarray(x), impl=jax.random.key_impl(t)))
      continue
    if x.shape != np.shape(t):
      raise CheckpointError(f"{name!r} has shape {x.shape}, expected "
                            f"{np.shape(t)}")
    leaves.append(jnp.asarray(x, dtype=jnp.asarray(t).dtype))
  return jax.tree_util.tree_unflatten(treedef, leaves)


class TrainCheckpoints:
  """Training checkpoints of one run, kept by an orbax ``CheckpointManager``.

  A checkpoint holds any pytree (the whole replica-axis train state: params,
  BatchNorm statistics, optimizer state, step, PRNG data keys, divergence
  steps; and the masks) under an integer *position* that grows through the
  run. Orbax writes each checkpoint to a temporary directory and renames it
  when complete, so a kill during a write leaves the previous checkpoints
  intact. ``keep`` newest checkpoints are kept (older ones deleted).
  """

  def __init__(self, directory: str, keep: int = 2):
    self.directory = os.path.abspath(directory)
    self._saves = 0
    os.makedirs(self.directory, exist_ok=True)
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
            multiprocessing_options=_this_process_only()))

  def save(self, position: int, tree: PyTree) -> None:
    """Write ``tree`` at ``position`` (in the background; the previous
    write is finished first). Only in processes that write files."""
    if not runtime.writes_files():
      return
    self.manager.wait_until_finished()
    self.manager.save(position, args=ocp.args.StandardSave(flatten(tree)),
                      force=True)
    self._saves += 1
    self._fault("kill_during_save")
    self.manager.wait_until_finished()
    self._fault("kill_after_save")

  def _fault(self, kind: str) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if spec.startswith(kind + ":") and self._saves == int(spec.split(":")[1]):
      os.kill(os.getpid(), signal.SIGKILL)

  def positions(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore_latest(self, template: PyTree,
                     warn=None) -> tuple[int, PyTree] | None:
    """(position, tree) of the newest readable checkpoint, or None if there
    is none. Unreadable (corrupt, truncated) ones are reported through
    ``warn``, deleted, and the next older one is tried; if checkpoints exist
    but none is readable, :class:`CheckpointError`."""
    positions = self.positions()
    problems = []
    for position in reversed(positions):
      try:
        flat = self.manager.restore(position, args=ocp.args.StandardRestore())
        return position, unflatten(flat, template)
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
