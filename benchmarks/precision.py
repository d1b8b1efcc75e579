"""bfloat16 compute vs float32: step time and loss, measured in one run.

``train.compute_dtype=bfloat16`` runs the forward and backward pass in
bfloat16 with float32 master weights (issue 7, item 3). This times R
replicas of a config's training both ways (warm) and compares the losses.

  python benchmarks/precision.py [--config configs/mnist1d_resnet1d.py] [--replicas 8] [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import report, timed  # noqa: E402
from jaxticket import config  # noqa: E402
from jaxticket.experiments import common  # noqa: E402
from jaxticket.core import loop as loop_lib


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/mnist1d_resnet1d.py")
  parser.add_argument("--replicas", type=int, default=8)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  out = {}
  for dtype in ("float32", "bfloat16"):
    cfg = config.load(args.config)
    cfg.seeds = args.replicas
    cfg.train.compute_dtype = dtype
    s = common.setup(cfg)
    st = s.trainer.init(loop_lib.replica_keys(s.seeds))
    s.trainer.run(common.copy_tree(st), s.hparams, args.steps)
    (state, losses), t = timed(lambda: s.trainer.run(
        common.copy_tree(st), s.hparams, args.steps))
    out[dtype] = {"seconds": round(t, 4),
                  "ms_per_replica_step": round(
                      1e3 * t / (args.replicas * args.steps), 4),
                  "final_loss": float(np.mean(np.asarray(losses)[:, -20:]))}
  report("precision", {
      "config": args.config, "replicas": args.replicas, "steps": args.steps,
      **out, "bf16_speedup": round(out["float32"]["seconds"] /
                                   out["bfloat16"]["seconds"], 2)}, args.out)


if __name__ == "__main__":
  main()
