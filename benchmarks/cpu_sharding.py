"""Sharding the replica axis over simulated CPU devices (issue 7, f).

On a CPU, ``jax_num_cpu_devices=N`` splits the host into N jax devices; the
replica axis is then sharded over them (``shard_map``; replica counts that
do not divide are padded) and XLA runs the shards in parallel threads. This
measures, each device count in its own subprocess (the count is fixed when
jax's CPU backend starts):

- the training loop: ms per replica-step of the default LeNet training for
  several replica counts R, and its speedup over one device;
- the whole process: ``jaxticket imp`` on the default config (4 seeds,
  4 levels; compilation, evaluation, pruning and checkpoints included) with
  ``--config.train.cpu_devices`` 0 (one device) vs -1 (one per core, the
  default).

  python benchmarks/cpu_sharding.py [--replicas 1,3,8,9,16] [--devices 2,4,8]
      [--steps 500] [--no-whole] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WORKER = """
import json, jax
jax.config.update("jax_num_cpu_devices", {devices})
from common import best_time
from jaxticket import config
from jaxticket.experiments.imp import imp
from jaxticket.experiments import common
from jaxticket.core import loop as loop_lib
cfg = config.default_config()
out = {{}}
for r in {replicas}:
  cfg.seeds = r
  s = common.setup(cfg)
  st = s.trainer.init(loop_lib.replica_keys(s.seeds))
  best = best_time(lambda: s.trainer.run(common.copy_tree(st), s.hparams,
                                         {steps})[0].params)
  out[r] = 1e3 * best / (r * {steps})
print(json.dumps({{"ms": out, "devices": jax.device_count()}}))
"""


def loop_times(devices: int, replicas: list[int], steps: int) -> dict:
  """ms per replica-step for each R, with ``devices`` simulated devices."""
  code = WORKER.format(devices=devices, replicas=replicas, steps=steps)
  out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                       capture_output=True, cwd=HERE,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def whole_imp_seconds(cpu_devices: int) -> float:
  """Wall time of ``jaxticket imp`` (default config) in a fresh process."""
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxticket.cli", "imp",
                    "--workdir", workdir, "--no-progress",
                    "--no-compile-cache",  # both counts compile (cold)
                    f"--config.train.cpu_devices={cpu_devices}"],
                   check=True, capture_output=True, cwd=os.path.dirname(HERE),
                   env={**os.environ, "JAX_PLATFORMS": "cpu"})
    return time.perf_counter() - t0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--replicas", default="1,3,8,9,16")
  parser.add_argument("--devices", default="2,4,8")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--no-whole", action="store_true",
                      help="skip the whole-process `jaxticket imp` runs")
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  from common import report
  from jaxticket.core import runtime
  replicas = [int(x) for x in args.replicas.split(",")]
  base = loop_times(1, replicas, args.steps)
  rows = [{"devices": 1, "ms_per_replica_step": {r: round(base[str(r)], 4)
                                                 for r in replicas}}]
  for d in [int(x) for x in args.devices.split(",")]:
    ms = loop_times(d, replicas, args.steps)
    rows.append({"devices": d,
                 "ms_per_replica_step": {r: round(ms[str(r)], 4)
                                         for r in replicas},
                 "speedup": {r: round(base[str(r)] / ms[str(r)], 2)
                             for r in replicas}})
  result = {"steps": args.steps, "loop": rows,
            "auto_devices": runtime.auto_cpu_devices()}
  if not args.no_whole:
    one, auto = whole_imp_seconds(0), whole_imp_seconds(-1)
    result["whole_imp"] = {"one_device_s": round(one, 1),
                           "auto_devices_s": round(auto, 1),
                           "speedup": round(one / auto, 2)}
  report("cpu_sharding", result, args.out)


if __name__ == "__main__":
  main()
