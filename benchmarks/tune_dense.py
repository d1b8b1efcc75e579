"""Tune the dense recipe of a config on its validation split (Ma et al.'s
first condition: tickets are judged against a *well-trained* dense net).

Every (lr, weight decay, seed) combination is a replica of ONE vmapped
program per step budget. Prints a table of validation (and test) accuracy.

  python benchmarks/tune_dense.py --config configs/mnist1d_lenet.py \
      --lrs 0.01,0.03,0.1,0.3 --wds 1e-4,5e-4 --steps 1000,2000,4000 --seeds 4

``--set KEY=VALUE`` (repeatable, ``--config.`` keys without the prefix)
changes the config for the whole sweep, e.g. ``--set train.optimizer=adam``
or ``--set model.width=2``: a recipe axis that changes the program is one
run of this script per value.
"""

from __future__ import annotations

import argparse
import itertools
import time

import jax

from jaxticket import config as config_lib
from jaxticket.experiments import common
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import runtime


def floats(text: str) -> list[float]:
  return [float(t) for t in text.split(",")]


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--config", default="")
  ap.add_argument("--lrs", type=floats, default=[0.01, 0.03, 0.1, 0.3])
  ap.add_argument("--wds", type=floats, default=[1e-4, 5e-4])
  ap.add_argument("--steps", type=lambda t: [int(x) for x in t.split(",")],
                  default=[1000, 2000, 4000])
  ap.add_argument("--seeds", type=int, default=4)
  ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                  help="config override for the whole sweep (repeatable)")
  args = ap.parse_args()
  runtime.set_cpu_devices(runtime.AUTO_CPU_DEVICES)  # as the command does
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}"
        + (f"; {', '.join(args.set)}" if args.set else ""))
  print("| steps | lr | wd | val acc (%) | test acc (%) |\n|---:|---:|---:|---:|---:|")
  for steps in args.steps:
    cfg = config_lib.apply_overrides(config_lib.load(args.config), args.set)
    cfg.train.steps = steps
    cfg.train.eval_every = steps
    cfg.seeds = args.seeds
    s = common.setup(cfg)
    grid = list(itertools.product(args.lrs, args.wds, range(args.seeds)))
    hp = optim.stack_hparams([g[0] for g in grid], [g[1] for g in grid])
    state = s.trainer.init(loop_lib.replica_keys([cfg.seed + g[2] for g in grid]))
    t0 = time.time()
    state = s.trainer.train(state, hp, steps, steps)
    ev = jax.device_get(s.trainer.evaluate(state))
    for i, (lr, wd) in enumerate(itertools.product(args.lrs, args.wds)):
      sl = slice(i * args.seeds, (i + 1) * args.seeds)
      v, t = ev.val_accuracy[sl] * 100, ev.test_accuracy[sl] * 100
      print(f"| {steps} | {lr:g} | {wd:g} | {v.mean():.2f} ± {v.std():.2f} | "
            f"{t.mean():.2f} ± {t.std():.2f} |", flush=True)
    print(f"<!-- {len(grid)} replicas x {steps} steps: {time.time() - t0:.1f}s -->")


if __name__ == "__main__":
  main()
