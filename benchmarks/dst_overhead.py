"""Cost of dynamic sparse training inside the compiled step (issue 15).

Measured side by side in one process on the offline default (LeNet-300-100
on MNIST-1D, batch 128, masked SGD), R replicas from the same ERK random
mask at 10% density, warm: after one compiling call each, candidates are
timed in interleaved rounds and the best round counts, in wall time and in
process CPU time (all threads; robust to other jobs on a shared machine):

a. RigL (and SET, GMP, GraNet) with an update every ``--every`` steps vs
   static sparse training of the same mask: the mask-update cost (target:
   under 10% at Delta T = 100 on CPU and GPU);
b. DST vs the dense step (same program, all-ones mask);
c. the ``dst`` layout: several updaters chosen per replica in ONE program
   (``sparse_training.Choice``, every branch computed at a tick under vmap)
   vs one program per updater run one after another, and vs the static
   program with the same (5 x R) replicas.

  python benchmarks/dst_overhead.py [--steps 500] [--every 100]
      [--replicas 8] [--cpu-devices -1] [--out F]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import report, timed  # noqa: E402
from jaxticket import config, sparse_training  # noqa: E402
from jaxticket.core import loop as loop_lib  # noqa: E402
from jaxticket.core import optim, runtime  # noqa: E402
from jaxticket.experiments import common  # noqa: E402
from jaxticket.pruning import controls, ratios  # noqa: E402


def erk_masks(ones, density: float, seed: int = 0):
  """ERK random masks per replica (exact counts)."""
  one = jax.tree.map(lambda m: None if m is None else m[0], ones,
                     is_leaf=lambda x: x is None)
  shapes = ratios.leaf_shapes(one)
  sizes = [int(np.prod(s)) for s in shapes]
  counts = ratios.kept_counts(sizes, ratios.erk(shapes, density), density)
  r = jax.tree.leaves(ones)[0].shape[0]
  keys = jax.random.split(jax.random.key(seed), r)
  return jax.jit(jax.vmap(lambda k, m: controls.random_with_counts(
      k, m, [jnp.int32(c) for c in counts])))(keys, ones)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--every", type=int, default=100)
  parser.add_argument("--replicas", type=int, default=8)
  parser.add_argument("--density", type=float, default=0.1)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--cpu-devices", type=int, default=-1)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  runtime.set_cpu_devices(args.cpu_devices)  # before any computation
  cfg = config.load(args.config)
  cfg.train.steps = args.steps
  s = common.setup(cfg)
  n, r, every = args.steps, args.replicas, args.every
  end = int(0.75 * n)
  kw = dict(update_every=every)
  updaters = {
      "rigl": sparse_training.RigL(end_step=end, **kw),
      "set": sparse_training.SET(end_step=end, **kw),
      "gmp": sparse_training.GMP(start_step=every, end_step=end,
                                 final_density=args.density, **kw),
      "granet": sparse_training.GraNet(start_step=every, end_step=end,
                                       total_steps=n,
                                       final_density=args.density, **kw)}
  trainers = {"static": s.trainer}
  for name, u in updaters.items():
    trainers[name] = loop_lib.Trainer(s.trainer.prog._replace(updater=u),
                                      s.data)
  choice = sparse_training.Choice((sparse_training.Static(),
                                   *updaters.values()))
  trainers["choice"] = loop_lib.Trainer(
      s.trainer.prog._replace(updater=choice), s.data)

  init = s.trainer.init(loop_lib.replica_keys(range(r)))
  ones = common.dense_masks(cfg, init.params)
  sparse = erk_masks(ones, args.density)
  hp = optim.stack_hparams([cfg.train.lr] * r, [cfg.train.weight_decay] * r)

  def start(tr, mask):
    return tr.restart(common.copy_tree(init).replace(mask=mask))

  def runner(tr, mask, hparams=hp):
    st = start(tr, mask)
    return lambda: tr.run(common.copy_tree(st), hparams, n)[0].params

  runs = {"dense": runner(s.trainer, ones),
          "static_sparse": runner(s.trainer, sparse),
          **{name: runner(trainers[name], ones if name in ("gmp", "granet")
                          else sparse) for name in updaters}}
  # One program with every updater chosen per replica (5 x r replicas)
  # vs the five programs of r replicas one after another.
  five = jax.tree.map(lambda *xs: jnp.concatenate(xs),
                      *([sparse] * 3 + [ones] * 2))
  # Choice order: static, rigl, set, gmp, granet (r replicas each).
  which = np.repeat([0, 1, 2, 3, 4], r).astype(np.int32)
  hp5 = optim.stack_hparams([cfg.train.lr] * 5 * r,
                            [cfg.train.weight_decay] * 5 * r)
  init5 = s.trainer.init(loop_lib.replica_keys(range(5 * r)))
  st5 = trainers["choice"].restart(init5.replace(mask=five))
  st5 = st5.replace(sparse_state=sparse_training.assign(st5.sparse_state,
                                                        which=which))
  runs["choice_5_methods"] = lambda: trainers["choice"].run(
      common.copy_tree(st5), hp5, n)[0].params
  # The same 5 x r replicas and masks in the static program: what the
  # replica count alone costs (XLA:CPU's per-replica time grows with R).
  st5s = s.trainer.restart(init5.replace(mask=five))
  runs["static_5r"] = lambda: s.trainer.run(common.copy_tree(st5s), hp5,
                                            n)[0].params
  # Interleaved rounds (the machine is shared: load drifts between
  # candidates measured one after another); the best round counts.
  for fn in runs.values():
    timed(fn)  # compile
  times = {k: float("inf") for k in runs}
  cpu = {k: float("inf") for k in runs}
  for _ in range(args.rounds):
    for k, fn in runs.items():
      c0 = time.process_time()
      times[k] = min(times[k], timed(fn)[1])
      cpu[k] = min(cpu[k], time.process_time() - c0)
  for t in (times, cpu):
    t["separate_5_programs"] = (t["static_sparse"] + t["rigl"] + t["set"]
                                + t["gmp"] + t["granet"])
  ratios = lambda t: {
      "overhead_vs_static_sparse": {
          k: round(t[k] / t["static_sparse"] - 1, 4) for k in updaters},
      "dst_vs_dense": {k: round(t[k] / t["dense"], 4)
                       for k in ("static_sparse", *updaters)},
      "one_program_vs_separate": round(
          t["choice_5_methods"] / t["separate_5_programs"], 4),
      "choice_vs_static_same_replicas": round(
          t["choice_5_methods"] / t["static_5r"] - 1, 4)}
  report("dst_overhead", {
      "config": args.config or "default", "steps": n, "update_every": every,
      "replicas": r, "density": args.density,
      "updates_per_run": len(range(every, end + 1, every)),
      "rounds": args.rounds,
      "seconds": {k: round(v, 4) for k, v in times.items()},
      "cpu_seconds": {k: round(v, 4) for k, v in cpu.items()},
      "wall": ratios(times), "cpu": ratios(cpu)},
      args.out)


if __name__ == "__main__":
  main()
