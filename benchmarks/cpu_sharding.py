"""Sharding the replica axis over simulated CPU devices (issue 7, f).

On a CPU, ``jax_num_cpu_devices=N`` splits the host into N jax devices; the
replica axis is then sharded over them (``shard_map``) and XLA runs the
shards in parallel threads. This measures R replicas of the default LeNet
training on 1 device vs on N simulated devices, each in its own subprocess
(the device count is fixed when jax's CPU backend starts).

  python benchmarks/cpu_sharding.py [--replicas 16] [--devices 2,4,8] [--steps 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WORKER = """
import json, sys, jax
jax.config.update("jax_num_cpu_devices", {devices})
from common import timed
from jaxticket import config, imp, train
cfg = config.default_config()
cfg.seeds = {replicas}
s = imp.setup(cfg)
st = s.trainer.init(train.replica_keys(s.seeds))
mask = imp.dense_masks(cfg, st.params)
s.trainer.run(imp.copy_tree(st), mask, s.hparams, {steps})
_, t = timed(lambda: s.trainer.run(imp.copy_tree(st), mask, s.hparams,
                                   {steps})[0].params)
print(json.dumps({{"seconds": t, "devices": jax.device_count()}}))
"""


def measure(devices: int, replicas: int, steps: int) -> dict:
  code = WORKER.format(devices=devices, replicas=replicas, steps=steps)
  out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                       capture_output=True,
                       cwd=os.path.dirname(os.path.abspath(__file__)),
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--replicas", type=int, default=16)
  parser.add_argument("--devices", default="2,4,8")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  from common import report
  base = measure(1, args.replicas, args.steps)["seconds"]
  rows = [{"devices": 1, "seconds": round(base, 3), "speedup": 1.0}]
  for d in [int(x) for x in args.devices.split(",")]:
    t = measure(d, args.replicas, args.steps)["seconds"]
    rows.append({"devices": d, "seconds": round(t, 3),
                 "speedup": round(base / t, 2)})
  report("cpu_sharding", {"replicas": args.replicas, "steps": args.steps,
                          "ms_per_replica_step_1_device": round(
                              1e3 * base / (args.replicas * args.steps), 4),
                          "layouts": rows}, args.out)


if __name__ == "__main__":
  main()
