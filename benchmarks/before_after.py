"""Training throughput of the code before and after the platform restructure.

Times the OLD code (the flat modules of commit 54fc933: ``jaxticket.train``,
``jaxticket.imp``, the mask passed apart from the state) and the NEW code
(``jaxticket.core``, ``jaxticket.experiments``: the mask in the state, the
optimizer an optax chain) on identical work, in ONE invocation: the default
config (LeNet-300-100 on MNIST-1D, batch 128, SGD), dense masks, R = 1 and
8 replicas, ``--steps`` steps of ``Trainer.run``, with one simulated CPU
device per core (the command's default) and with one device.

Each measurement (code, devices, R) runs in its own subprocess with
PYTHONPATH at that code; old and new alternate (old, new, then new, old in
the next round ...), and each subprocess reports warm timings (after one
untimed call that compiles), of which the best counts. The load average
around every measurement is recorded, as the machine may be shared.

``--imp``: also the whole ``jaxticket imp`` default run (4 seeds, 4
levels) of each code in a fresh process, both with no persistent
compilation cache (the old code has none by default; the new one gets
``--no-compile-cache``), separate workdirs.

  python benchmarks/before_after.py [--old DIR] [--steps 2000]
      [--replicas 1,8] [--devices -1,0] [--rounds 2] [--imp] [--out F]

``--old``: a checkout of the old code (default: ``git archive 54fc933`` of
this repository, extracted into a temporary directory).
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
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

OLD_COMMIT = "54fc933"


def worker(api: str, replicas: int, cpu_devices: int, steps: int,
           repeat: int) -> None:
  """Time ``Trainer.run`` of ``api`` ("old" or "new"); prints JSON."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  import jaxticket
  from common import timed
  if api == "old":
    from jaxticket import runtime
  else:
    from jaxticket.core import runtime
  runtime.set_cpu_devices(cpu_devices)  # before any computation
  from jaxticket import config
  cfg = config.default_config()
  cfg.seeds = replicas
  copy = lambda tree: jax.tree.map(jnp.copy, tree)  # run donates the state
  if api == "old":
    from jaxticket import imp, train
    s = imp.setup(cfg)
    st = s.trainer.init(train.replica_keys(s.seeds))
    mask = imp.dense_masks(cfg, st.params)
    run = lambda: s.trainer.run(copy(st), mask, s.hparams, steps)
  else:
    from jaxticket.core import loop
    from jaxticket.experiments import common
    s = common.setup(cfg)
    st = s.trainer.init(loop.replica_keys(s.seeds))  # holds the dense mask
    run = lambda: s.trainer.run(copy(st), s.hparams, steps)
  (_, losses), first = timed(run)  # compiles
  times = [timed(run)[1] for _ in range(repeat)]
  print(json.dumps({
      "code": os.path.dirname(os.path.dirname(jaxticket.__file__)),
      "devices": jax.device_count(), "first_s": first, "times_s": times,
      "final_loss": float(np.mean(np.asarray(losses)[:, -1]))}))


def load() -> float:
  return os.getloadavg()[0]


def env_for(code: str) -> dict:
  env = {**os.environ, "PYTHONPATH": code, "JAX_PLATFORMS": "cpu"}
  env.pop("JAXTICKET_COMPILE_CACHE", None)  # the old code's cache switch
  return env


def measure(api: str, code: str, replicas: int, cpu_devices: int, steps: int,
            repeat: int, cwd: str) -> dict:
  """One worker subprocess; its result plus the load average around it."""
  before = load()
  out = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--worker", api,
       "--replicas", str(replicas), "--cpu-devices", str(cpu_devices),
       "--steps", str(steps), "--repeat", str(repeat)],
      check=True, capture_output=True, text=True, cwd=cwd, env=env_for(code))
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result["load"] = [round(before, 2), round(load(), 2)]
  return result


def whole_imp(api: str, code: str, cwd: str) -> dict:
  """Wall time of the default ``jaxticket imp`` in a fresh process, with no
  persistent compilation cache; and its final level's test accuracy."""
  with tempfile.TemporaryDirectory() as workdir:
    cmd = [sys.executable, "-m", "jaxticket.cli", "imp", "--workdir",
           workdir, "--no-progress"]
    if api == "new":
      cmd.append("--no-compile-cache")
    before = load()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=cwd,
                   env=env_for(code))
    wall = time.perf_counter() - t0
    with open(os.path.join(workdir, "summary.json")) as f:
      summary = json.load(f)
  last = summary.get("levels", [{}])[-1].get("test_accuracy", {})
  return {"wall_s": round(wall, 2), "load": [round(before, 2), round(load(), 2)],
          "final_level_test_accuracy": last.get("mean")}


def extract_old(into: str) -> str:
  """``git archive`` of the old commit, unpacked into ``into``."""
  os.makedirs(into, exist_ok=True)
  archive = subprocess.run(["git", "-C", REPO, "archive", OLD_COMMIT],
                           check=True, capture_output=True).stdout
  subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
  return into


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--old", default="",
                      help=f"old checkout (default: {OLD_COMMIT} extracted)")
  parser.add_argument("--new", default=REPO)
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--replicas", default="1,8")
  parser.add_argument("--devices", default="-1,0",
                      help="train.cpu_devices values (-1: one per core)")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--repeat", type=int, default=3)
  parser.add_argument("--imp", action="store_true")
  parser.add_argument("--imp-rounds", type=int, default=1)
  parser.add_argument("--worker", choices=["old", "new"])
  parser.add_argument("--cpu-devices", type=int, default=-1)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  if args.worker:
    return worker(args.worker, int(args.replicas), args.cpu_devices,
                  args.steps, args.repeat)
  from common import report
  with tempfile.TemporaryDirectory() as tmp:
    old = os.path.abspath(args.old) if args.old else extract_old(
        os.path.join(tmp, "old"))
    cwd = os.path.join(tmp, "cwd")  # no jaxticket/ here to shadow PYTHONPATH
    os.makedirs(cwd, exist_ok=True)
    codes = {"old": old, "new": os.path.abspath(args.new)}
    cells = [(d, int(r)) for d in map(int, args.devices.split(","))
             for r in args.replicas.split(",")]
    runs: dict = {}
    for rnd in range(args.rounds):
      for i, (d, r) in enumerate(cells):
        order = ("old", "new") if (rnd + i) % 2 == 0 else ("new", "old")
        for api in order:
          res = measure(api, codes[api], r, d, args.steps, args.repeat, cwd)
          print(f"round {rnd} devices={res['devices']} R={r} {api}: best "
                f"{min(res['times_s']):.3f} s, load {res['load']}",
                file=sys.stderr, flush=True)
          runs.setdefault((d, r), {}).setdefault(api, []).append(res)
    rows = []
    for (d, r), by in runs.items():
      ms = {api: 1e3 * min(t for res in rs for t in res["times_s"])
            / (r * args.steps) for api, rs in by.items()}
      rows.append({
          "cpu_devices": d, "devices": by["new"][0]["devices"],
          "replicas": r,
          "old_ms_per_replica_step": round(ms["old"], 4),
          "new_ms_per_replica_step": round(ms["new"], 4),
          "new_over_old": round(ms["new"] / ms["old"], 3),
          "round_best_s": {api: [round(min(res["times_s"]), 4) for res in rs]
                           for api, rs in by.items()},
          "first_call_s": {api: [round(res["first_s"], 3) for res in rs]
                           for api, rs in by.items()},
          "final_loss": {api: rs[0]["final_loss"] for api, rs in by.items()},
          "load": {api: [res["load"] for res in rs] for api, rs in by.items()},
      })
    imp_runs = []
    if args.imp:
      for rnd in range(args.imp_rounds):
        for api in (("old", "new") if rnd % 2 == 0 else ("new", "old")):
          res = {"code": api, **whole_imp(api, codes[api], cwd)}
          print(f"imp {api}: {res}", file=sys.stderr, flush=True)
          imp_runs.append(res)
    result = {"old_commit": OLD_COMMIT if not args.old else old,
              "steps_timed": args.steps, "rounds": args.rounds,
              "repeat_per_round": args.repeat, "loop": rows}
    if imp_runs:
      best = {api: min(x["wall_s"] for x in imp_runs if x["code"] == api)
              for api in ("old", "new")}
      result["whole_imp"] = {"runs": imp_runs, "best_old_s": best["old"],
                             "best_new_s": best["new"],
                             "new_over_old": round(best["new"] / best["old"],
                                                   3)}
    report("before_after", result, args.out)


if __name__ == "__main__":
  main()
