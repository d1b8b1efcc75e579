"""Process-wide jax settings, applied before the first computation.

- Simulated CPU devices (``train.cpu_devices``, default one per core): on a
  CPU, splitting the host into N jax devices lets the replica axis be
  sharded over them, and XLA runs the shards in parallel threads
  (``jax_num_cpu_devices``); on 2 cores this trains 1.5-1.8x faster than one
  device (docs/benchmarks.md).
- Multi-process jobs (``jax.distributed``) for sweeps across hosts, either
  split (each process runs whole programs on its own devices) or spanning
  (every program's replica axis sharded over the devices of all processes;
  process 0 alone writes files, :func:`writes_files`).
- The persistent compilation cache, on by default for the ``jaxticket``
  command (:func:`compile_cache_dir`): compiled programs are written to a
  directory and a later identical program (a rerun, the next IMP level's
  trainer, a test) loads instead of compiling.
"""

from __future__ import annotations

import os
import sys

import jax

CACHE_ENV = "JAXTICKET_COMPILE_CACHE"
#: ``$JAXTICKET_COMPILE_CACHE`` values that turn the cache off ("" too).
CACHE_OFF = ("", "off", "0", "false", "no", "none")


def default_cache_dir() -> str:
  """``$XDG_CACHE_HOME/jaxticket/jax``, else ``~/.cache/jaxticket/jax``."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxticket", "jax")


def compile_cache_dir(directory: str | None = None, enabled: bool = True
                      ) -> str | None:
  """Where the command's compilation cache lives: ``directory``
  (``--compile-cache``), else ``$JAXTICKET_COMPILE_CACHE`` (a directory,
  or off/0/false/no/none/empty for no cache), else
  :func:`default_cache_dir`; None when off (``enabled=False``:
  ``--no-compile-cache``)."""
  if not enabled:
    return None
  if directory:
    return directory
  env = os.environ.get(CACHE_ENV)
  if env is not None:
    return None if env.strip().lower() in CACHE_OFF else env
  return default_cache_dir()


def enable_compile_cache(directory: str | None = None, enabled: bool = True
                         ) -> str | None:
  """Turn on jax's persistent compilation cache in
  :func:`compile_cache_dir` (``directory`` if given); returns the directory,
  or None when off. A default directory that cannot be made only warns."""
  chosen = compile_cache_dir(directory, enabled)
  if not chosen:
    return None
  try:
    os.makedirs(chosen, exist_ok=True)
  except OSError as e:
    if chosen != default_cache_dir():  # asked for explicitly
      raise ValueError(f"compilation cache {chosen} (--compile-cache or "
                       f"${CACHE_ENV}): cannot make that directory "
                       f"({e.strerror}); choose another, or pass "
                       "--no-compile-cache.") from None
    print(f"warning: no compilation cache: cannot make {chosen} "
          f"({e.strerror}); choose one with --compile-cache DIR.",
          file=sys.stderr)
    return None
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(chosen))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return chosen


#: ``train.cpu_devices`` value meaning "one simulated device per core".
AUTO_CPU_DEVICES = -1
#: At most this many automatic simulated devices (measured only up to 2
#: cores; set ``train.cpu_devices`` explicitly on bigger hosts to try more).
MAX_AUTO_CPU_DEVICES = 8


def auto_cpu_devices() -> int:
  """One simulated CPU device per usable core, at most 8; 0 (jax's default)
  when the user already chose a device count (``XLA_FLAGS`` with
  ``--xla_force_host_platform_device_count`` or ``jax_num_cpu_devices``)."""
  if ("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
      or jax.config.jax_num_cpu_devices > 0):
    return 0
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
      else (os.cpu_count() or 1)
  return min(cores, MAX_AUTO_CPU_DEVICES)


def set_cpu_devices(count: int) -> None:
  """Split the CPU into ``count`` jax devices (0: leave jax's default; -1:
  :func:`auto_cpu_devices`). Only a CPU backend is affected (on a GPU/TPU
  host the extra CPU devices stay unused). Must run before jax creates its
  CPU backend; later an explicit count warns and the automatic one is
  skipped silently."""
  auto = count == AUTO_CPU_DEVICES
  if auto:
    count = auto_cpu_devices()
  if count <= 0 or jax.config.jax_num_cpu_devices == count:
    return
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError as e:
    if not auto:
      print(f"warning: train.cpu_devices={count} not applied ({e}); set it "
            "before any jax computation in this process.", file=sys.stderr)


_SPAN_HOSTS = False


def init_distributed(coordinator: str | None = None,
                     num_processes: int | None = None,
                     process_id: int | None = None,
                     span_hosts: bool = False) -> tuple[int, int]:
  """Join a multi-process jax job (``jax.distributed.initialize``; with no
  arguments jax detects TPU pods, SLURM and other clusters from their
  environment). Returns (process index, process count).

  ``span_hosts``: training shards each program's replica axis over the
  devices of *all* processes (:func:`spans_hosts`); every process runs the
  same Python program (multi-controller SPMD), results are gathered to every
  process after each compiled chunk, and only process 0 writes files. On
  CPUs the cross-process collectives this needs use gloo.
  """
  global _SPAN_HOSTS
  if span_hosts:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator,
                             num_processes=num_processes,
                             process_id=process_id)
  _SPAN_HOSTS = span_hosts and jax.process_count() > 1
  return jax.process_index(), jax.process_count()


def spans_hosts() -> bool:
  """Whether replica axes are sharded over the devices of every process."""
  return _SPAN_HOSTS


def writes_files() -> bool:
  """Whether this process writes run files: always, except the processes
  other than 0 of a host-spanning job (they compute the same results)."""
  return not _SPAN_HOSTS or jax.process_index() == 0
