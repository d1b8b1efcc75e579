"""Process-wide jax settings, applied before the first computation.

- Simulated CPU devices (``train.cpu_devices``): on a CPU, splitting the
  host into N jax devices lets the replica axis be sharded over them, and
  XLA runs the shards in parallel threads (``jax_num_cpu_devices``).
- Multi-process jobs (``jax.distributed``) for sweeps across hosts.
- The persistent compilation cache (``--compile-cache DIR`` or
  ``$JAXTICKET_COMPILE_CACHE``): compiled programs are written to DIR and a
  later identical program (a rerun, the next IMP level's trainer, a test)
  loads instead of compiling.
"""

from __future__ import annotations

import os
import sys

import jax

CACHE_ENV = "JAXTICKET_COMPILE_CACHE"


def enable_compile_cache(directory: str | None = None) -> str | None:
  """Turn on jax's persistent compilation cache in ``directory`` (default
  ``$JAXTICKET_COMPILE_CACHE``); returns the directory or None."""
  directory = directory or os.environ.get(CACHE_ENV) or None
  if not directory:
    return None
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return directory


def set_cpu_devices(count: int) -> None:
  """Split the CPU into ``count`` jax devices (0: leave jax's default).
  Must run before jax creates its CPU backend; later it only warns."""
  if count <= 0 or jax.config.jax_num_cpu_devices == count:
    return
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError as e:
    print(f"warning: train.cpu_devices={count} not applied ({e}); set it "
          "before any jax computation in this process.", file=sys.stderr)


def init_distributed(coordinator: str | None = None,
                     num_processes: int | None = None,
                     process_id: int | None = None) -> tuple[int, int]:
  """Join a multi-process jax job (``jax.distributed.initialize``; with no
  arguments jax detects TPU pods, SLURM and other clusters from their
  environment). Returns (process index, process count)."""
  jax.distributed.initialize(coordinator_address=coordinator,
                             num_processes=num_processes,
                             process_id=process_id)
  return jax.process_index(), jax.process_count()
