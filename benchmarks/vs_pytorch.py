"""jaxticket against the common PyTorch practice: an eager training loop.

Both run on the GPU when there is one (torch on cuda, jax on its default
backend), else on the CPU.

Issue 7's benchmark (c). The reference is our own eager PyTorch loop in the
style of OpenLTH: LeNet-300-100 on the same MNIST-1D arrays, batch 128, SGD
(momentum 0.9, coupled weight decay 5e-4, cosine LR from 0.3), gradients and
weights masked every step with a 20%-density mask, seeds one after another.
jaxticket runs the same recipe with all seeds vmapped in one ``lax.scan``,
on a CPU split into one simulated device per core as the ``jaxticket``
command does by default (``train.cpu_devices=-1``).

Reported, measured in one run:
- in-loop: ms per replica-step, warm (best of 3), for torch (1 seed) and
  jaxticket with 1 and with 8 replicas, and the speedups;
- whole process: wall time of a fresh process (imports, data, compilation,
  training, final test evaluation) for ``--seeds`` seeds x ``--steps``
  steps, each framework in its own subprocess, and the speedups. The jax
  worker uses the persistent compilation cache as the ``jaxticket`` command
  does by default, in a fresh directory: its first run compiles and writes
  the cache (cold), a second identical run loads it (warm); the torch run
  sits between the two;
- the ``jaxticket train`` command itself (``--seeds`` x ``--steps``, dense,
  default evaluation and checkpoint intervals, all run files written), cold
  and warm cache likewise (``--no-command`` skips it);
- both frameworks' final test accuracy (they train the same recipe, so they
  should land close to each other: a check that the comparison is fair).

  pip install -e ".[bench]"   # torch
  python benchmarks/vs_pytorch.py [--steps 10000] [--seeds 8] [--no-command]
      [--out F]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DENSITY = 0.2
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def repo_env() -> dict:
  """The environment of a subprocess that imports this checkout's code."""
  path = os.environ.get("PYTHONPATH", "")
  return {**os.environ,
          "PYTHONPATH": REPO + (os.pathsep + path if path else "")}


def load_arrays():
  from jaxticket import data
  d = data.load("mnist1d")
  norm = lambda x: ((x - d.mean) / d.std).reshape(len(x), -1)
  return norm(d.train_x), d.train_y, norm(d.test_x), d.test_y


# --------------------------------------------------------------------------
# PyTorch: eager loop, one seed at a time (as OpenLTH runs them).


def torch_train(seed: int, steps: int, arrays, lr=0.3, wd=5e-4,
                batch=128, timing_from: int | None = None):
  """Train one seed; returns (test accuracy, seconds per step after
  ``timing_from`` steps, or None)."""
  import torch
  import torch.nn.functional as F
  torch.manual_seed(seed)
  dev = "cuda" if torch.cuda.is_available() else "cpu"
  sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
  x, y, tx, ty = (torch.from_numpy(a).to(dev) for a in arrays)
  x, tx = x.float(), tx.float()
  y, ty = y.long(), ty.long()
  model = torch.nn.Sequential(
      torch.nn.Linear(x.shape[1], 300), torch.nn.ReLU(),
      torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)
  ).to(dev)
  weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
  gen = torch.Generator().manual_seed(seed + 1)
  masks = [(torch.rand(w.shape, generator=gen) < DENSITY).float().to(dev)
           for w in weights]
  with torch.no_grad():
    for w, m in zip(weights, masks):
      w.mul_(m)
  opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                        weight_decay=wd)
  sched = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
  per_epoch = len(y) // batch
  t0 = None
  for step in range(steps):
    if step == timing_from:
      sync()
      t0 = time.perf_counter()
    if step % per_epoch == 0:
      perm = torch.randperm(len(y), generator=gen).to(dev)
    idx = perm[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
    loss = F.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    for w, m in zip(weights, masks):
      w.grad.mul_(m)
    opt.step()
    sched.step()
    with torch.no_grad():
      for w, m in zip(weights, masks):
        w.mul_(m)
  sync()
  per_step = None if t0 is None else (time.perf_counter() - t0) / (
      steps - timing_from)
  with torch.no_grad():
    acc = (model(tx).argmax(-1) == ty).float().mean().item()
  return acc, per_step


# --------------------------------------------------------------------------
# jaxticket: all seeds vmapped.


def jax_setup(seeds: int, steps: int):
  from jaxticket import config
  from jaxticket.experiments import common
  cfg = config.default_config()
  cfg.seeds, cfg.train.steps, cfg.train.eval_every = seeds, steps, steps
  return cfg, common.setup(cfg)


def jax_masks(cfg, s, state):
  """Random 20%-density masks and the params masked by them, in one jitted
  program (as the command prunes)."""
  import jax
  from jaxticket import pruning
  from jaxticket.core import masks as masks_lib
  from jaxticket.experiments import common

  def fn(params, keys):
    ones = common.dense_masks(cfg, params)
    mask = jax.vmap(lambda p, m, k: pruning.prune(
        p, m, 1 - DENSITY, scorer="random", key=k))(params, ones, keys)
    return mask, jax.vmap(masks_lib.apply)(params, mask)

  keys = jax.random.split(jax.random.key(1), len(s.seeds))
  return jax.jit(fn)(state.params, keys)


def jax_train(seeds: int, steps: int):
  """Fresh setup, train, evaluate; returns mean test accuracy."""
  import jax
  import numpy as np

  from jaxticket.core import loop as loop_lib
  cfg, s = jax_setup(seeds, steps)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  mask, params = jax_masks(cfg, s, state)
  state = state.replace(params=params, mask=mask)
  state = s.trainer.train(state, s.hparams, steps, steps)
  return float(np.mean(jax.device_get(s.trainer.evaluate(state)
                                      ).test_accuracy))


def jax_step_time(replicas: int, steps: int) -> float:
  """Warm seconds per replica-step of ``replicas`` vmapped replicas (the
  best of 3 timings)."""
  from common import best_time
  from jaxticket.experiments import common
  from jaxticket.core import loop as loop_lib
  cfg, s = jax_setup(replicas, steps)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  mask, _ = jax_masks(cfg, s, state)
  state = state.replace(mask=mask)
  return best_time(lambda: s.trainer.run(
      common.copy_tree(state), s.hparams, steps)[0].params) / (
          replicas * steps)


def worker(kind: str, seeds: int, steps: int, cache: str) -> None:
  if kind == "jax":  # as the jaxticket command: cache, one device per core
    from jaxticket.core import runtime
    runtime.enable_compile_cache(cache or None, enabled=bool(cache))
    runtime.set_cpu_devices(runtime.AUTO_CPU_DEVICES)
  if kind == "torch":
    import torch
    torch.set_num_threads(os.cpu_count())
    arrays = load_arrays()
    accs = [torch_train(sd, steps, arrays)[0] for sd in range(seeds)]
    acc = sum(accs) / len(accs)
  else:
    acc = jax_train(seeds, steps)
  print(json.dumps({"test_accuracy": acc}))


def whole_process(kind: str, seeds: int, steps: int, cache: str = ""
                  ) -> tuple[float, float]:
  """(wall seconds, mean test accuracy) of a fresh worker process."""
  t0 = time.perf_counter()
  out = subprocess.run([sys.executable, __file__, "--worker", kind,
                        "--seeds", str(seeds), "--steps", str(steps),
                        "--compile-cache", cache],
                       check=True, capture_output=True, text=True,
                       env=repo_env())
  wall = time.perf_counter() - t0
  return wall, json.loads(out.stdout.strip().splitlines()[-1])["test_accuracy"]


def command_process(seeds: int, steps: int, cache: str) -> tuple[float, float]:
  """(wall seconds, mean test accuracy) of the ``jaxticket train`` command:
  dense, default evaluation (every 500 steps) and checkpoints (every 1000),
  metrics, summary and report written."""
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxticket.cli", "train",
                    "--workdir", workdir, "--no-progress",
                    "--compile-cache", cache, f"--config.seeds={seeds}",
                    f"--config.train.steps={steps}"],
                   check=True, capture_output=True, text=True, cwd=REPO,
                   env=repo_env())
    wall = time.perf_counter() - t0
    with open(os.path.join(workdir, "summary.json")) as f:
      level = json.load(f)["levels"][-1]
  return wall, level["test_accuracy"]["mean"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10000)
  parser.add_argument("--seeds", type=int, default=8)
  parser.add_argument("--loop-steps", type=int, default=1000,
                      help="steps timed for the in-loop comparison")
  parser.add_argument("--no-command", action="store_true",
                      help="skip the `jaxticket train` command's runs")
  parser.add_argument("--worker", choices=["torch", "jax"])
  parser.add_argument("--compile-cache", default="",
                      help="(worker) compilation cache directory; empty: none")
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  if args.worker:
    return worker(args.worker, args.seeds, args.steps, args.compile_cache)
  from jaxticket.core import runtime
  runtime.set_cpu_devices(runtime.AUTO_CPU_DEVICES)  # as the command does
  import torch
  from common import report
  torch.set_num_threads(os.cpu_count())
  n = args.loop_steps
  arrays = load_arrays()  # best of 3, as for jax (after 100 warm steps)
  torch_step = min(torch_train(0, n + 100, arrays, timing_from=100)[1]
                   for _ in range(3))
  jax1, jax8 = jax_step_time(1, n), jax_step_time(8, n)
  loads = [os.getloadavg()[0]]
  with tempfile.TemporaryDirectory() as tmp:
    # The command's default cache, in fresh directories: the first jax run
    # compiles and writes it (cold), the second loads (warm).
    cache, command_cache = os.path.join(tmp, "jax"), os.path.join(tmp, "cmd")
    whole = {"seeds": args.seeds, "steps": args.steps}
    runs = [("jaxticket_cold_cache", lambda: whole_process(
                 "jax", args.seeds, args.steps, cache)),
            ("torch", lambda: whole_process("torch", args.seeds, args.steps)),
            ("jaxticket_warm_cache", lambda: whole_process(
                 "jax", args.seeds, args.steps, cache))]
    if not args.no_command:
      runs += [(f"command_{c}_cache", lambda: command_process(
          args.seeds, args.steps, command_cache)) for c in ("cold", "warm")]
    for name, fn in runs:
      wall, acc = fn()
      loads.append(os.getloadavg()[0])
      whole[f"{name}_s"] = round(wall, 2)
      whole[f"{name}_test_accuracy"] = round(acc, 4)
      print(f"{name}: {wall:.1f} s, load {loads[-1]:.2f}", file=sys.stderr,
            flush=True)
  for name in ("jaxticket_cold_cache", "jaxticket_warm_cache", "command_cold_cache",
               "command_warm_cache"):
    if f"{name}_s" in whole:
      whole[f"speedup_{name}"] = round(whole["torch_s"] / whole[f"{name}_s"],
                                       2)
  report("vs_pytorch", {
      "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
      "torch_device": "cuda" if torch.cuda.is_available() else "cpu",
      "in_loop_ms_per_replica_step": {
          "torch_eager_1_seed": round(1e3 * torch_step, 4),
          "jaxticket_1_replica": round(1e3 * jax1, 4),
          "jaxticket_8_replicas": round(1e3 * jax8, 4)},
      "in_loop_speedup": {"1_seed": round(torch_step / jax1, 2),
                          "8_seeds": round(torch_step / jax8, 2)},
      "whole_process": whole,
      "load_average_1min": [round(x, 2) for x in loads],
  }, args.out)


if __name__ == "__main__":
  main()
