"""Shared helpers of the benchmarks: machine description and timing."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Callable

import jax


def machine() -> dict:
  """What the numbers were measured on."""
  dev = jax.devices()[0]
  return {"device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
          "devices": jax.device_count(), "cpu_count": os.cpu_count(),
          "processor": platform.processor() or platform.machine(),
          "jax": jax.__version__, "python": platform.python_version()}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
  """(result, seconds) of ``fn()``, waiting for device work to finish."""
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - t0


def best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
  """Fewest seconds of ``repeat`` calls of ``fn`` (after one untimed call
  that compiles). The first call after compiling can take twice as long
  (seen on the 2-core CPU: 0.50 s, then 0.23 s for the same 500 steps), so
  one timing alone misleads."""
  timed(fn)
  return min(timed(fn)[1] for _ in range(repeat))


def report(name: str, result: dict, out: str | None) -> None:
  """Print ``result`` (with the machine) as JSON, and save it to ``out``."""
  result = {"benchmark": name, "machine": machine(), **result}
  text = json.dumps(result, indent=2)
  print(text)
  if out:
    with open(out, "w") as f:
      f.write(text + "\n")
