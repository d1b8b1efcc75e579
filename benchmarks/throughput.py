"""Replica scaling, mask overhead and the fraction of the arithmetic peak.

Issue 7's benchmarks (a), (b) and (d), measured in one process on the
offline default (LeNet-300-100 on MNIST-1D, batch 128, masked SGD):

a. R = 1, 2, 4, 8, 16, 32 replicas vmapped in one ``lax.scan`` program vs
   the same training run R times one after another (R=1 program, warm).
b. mask overhead: the masked step (kernels masked, density 20%) vs the same
   step with no mask at all (every mask leaf ``None``), at 8 replicas.
d. FLOP/s: a large float32 matmul's rate (the machine's practical peak for
   this dtype and precision) and the training's achieved rate (XLA's FLOP
   count of one vmapped step times steps per second).

  python benchmarks/throughput.py [--steps 500] [--config FILE]
      [--cpu-devices -1] [--out F]

On a CPU, ``--cpu-devices`` splits the host into simulated devices as the
``jaxticket`` command does (default -1: one per core, the command's
default; 0: one device).

All timings are warm: the best of 3 after an untimed call that compiles.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from common import best_time, report  # noqa: E402
from jaxticket import config, pruning  # noqa: E402
from jaxticket.core import runtime  # noqa: E402
from jaxticket.experiments import common  # noqa: E402
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib

REPLICAS = (1, 2, 4, 8, 16, 32)


def matmul_flops_per_s(n: int = 4096, repeat: int = 10) -> float:
  """Rate of an n x n x n float32 matmul at the default precision."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  f = jax.jit(lambda a, b: a @ b)
  return 2 * n ** 3 / best_time(lambda: f(a, b), repeat)


def step_flops(trainer: loop_lib.Trainer, state, mask, hp, perms) -> float:
  """XLA's FLOP count of one vmapped training step (all replicas)."""
  fn = jax.vmap(lambda s, h, p: step_lib.train_step(
      trainer.prog, s, h, trainer.arrays, p))
  compiled = jax.jit(fn).lower(state.replace(mask=mask), hp, perms).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--replicas", default=",".join(map(str, REPLICAS)))
  parser.add_argument("--cpu-devices", type=int, default=-1)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  runtime.set_cpu_devices(args.cpu_devices)  # before any computation
  cfg = config.load(args.config)
  s = common.setup(cfg)
  tr, n = s.trainer, args.steps

  def states(r):
    st = tr.init(loop_lib.replica_keys(range(r)))
    hp = optim.stack_hparams([cfg.train.lr] * r, [cfg.train.weight_decay] * r)
    return st, hp

  def pruned(st, density=0.2):
    ones = common.dense_masks(cfg, st.params)
    keys = jax.random.split(jax.random.key(0), len(st.step))
    return jax.vmap(lambda p, m, k: pruning.prune(
        p, m, 1 - density, scorer="random", key=k))(st.params, ones, keys)

  def run_time(r, mask_fn):
    st, hp = states(r)
    mask = mask_fn(st)
    st = st.replace(mask=mask)
    return best_time(lambda: tr.run(common.copy_tree(st), hp, n)[0].params)

  # (a) replicas: vmapped vs sequential.
  replicas = [int(r) for r in args.replicas.split(",")]
  one = run_time(1, pruned)
  rows = []
  for r in replicas:
    vmapped = run_time(r, pruned) if r > 1 else one
    sequential = sum(run_time(1, pruned) for _ in range(r)) if r <= 8 else \
        r * one
    rows.append({"replicas": r, "vmapped_s": round(vmapped, 4),
                 "sequential_s": round(sequential, 4),
                 "sequential_measured": r <= 8,
                 "ms_per_replica_step": round(1e3 * vmapped / (r * n), 4),
                 "speedup_vs_sequential": round(sequential / vmapped, 2)})

  # (b) mask overhead at 8 replicas.
  no_mask = lambda st: jax.tree.map(lambda p: None, st.params)
  masked8, plain8 = run_time(8, pruned), run_time(8, no_mask)

  # (d) FLOP/s of the training vs a large matmul.
  st, hp = states(8)
  perms = jax.vmap(lambda k: step_lib.epoch_permutation(
      k, 0, tr.arrays.train_x.shape[0]))(st.data_key)
  flops8 = step_flops(tr, st, pruned(st), hp, perms)
  peak = matmul_flops_per_s()
  achieved = flops8 * n / masked8
  report("throughput", {
      "model": cfg.model.name, "dataset": cfg.data.name,
      "batch_size": cfg.train.batch_size, "steps_timed": n,
      "replicas": rows,
      "mask_overhead": {"masked_s": round(masked8, 4),
                        "unmasked_s": round(plain8, 4),
                        "overhead_fraction": round(masked8 / plain8 - 1, 3)},
      "flops": {"per_step_8_replicas": flops8,
                "matmul_peak_gflops": round(peak / 1e9, 1),
                "training_gflops_8_replicas": round(achieved / 1e9, 1),
                "fraction_of_peak": round(achieved / peak, 3)},
  }, args.out)


if __name__ == "__main__":
  main()
