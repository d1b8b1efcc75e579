"""Cost of an instability analysis relative to training one child alone.

Issue 5's goal: the analysis (2 children x 4 rewind steps x 31 alphas on the
offline default, one seed) costs little more than its trainings. On a CPU,
where a small net already keeps the cores busy, 8 children cost ~8 trainings,
so we report what comes *beyond* the trainings (paths: interpolation,
BatchNorm re-estimation, evaluation at 31 alphas) as a fraction of them (goal
< 20%). On a GPU, where one small net leaves the device idle, the goal is the
whole analysis under 3x one child's training.

  python benchmarks/lmc_overhead.py [--config FILE[:SIZE]] [--out result.json]

Both are measured warm (programs compiled by a first, untimed round) and cold
(first round, compilation included), in the same process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


from common import report, timed  # noqa: E402
from jaxticket import config  # noqa: E402
from jaxticket.experiments import common  # noqa: E402
from jaxticket.experiments.lmc import lmc  # noqa: E402
from jaxticket.core.workdir import Workdir  # noqa: E402
from jaxticket.core import loop as loop_lib


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="")
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  cfg = config.load(args.config)
  cfg.seeds = 1
  cfg.lmc.children = 2
  cfg.lmc.rewind_steps = (0, 25, 100, 500) if cfg.train.steps > 500 else \
      cfg.lmc.rewind_steps
  cfg.lmc.alphas = 31
  s = common.setup(cfg)
  conn = lmc.make_connectivity(s)
  steps = cfg.train.steps

  def one_child():
    state = s.trainer.init(loop_lib.replica_keys(s.seeds))
    return s.trainer.train(state, s.hparams, steps,
                           cfg.train.eval_every).params

  def analysis():
    with tempfile.TemporaryDirectory() as d:
      return lmc.instability(s, Workdir(d, "lmc"), None, progress=False,
                             connectivity=conn)

  _, child_cold = timed(one_child)
  cold, analysis_cold = timed(analysis)
  _, child = timed(one_child)
  warm, analysis_warm = timed(analysis)
  t = warm["timings_s"]
  trainings = t["parent_s"] + t["children_s"]
  report("lmc_overhead", {
      "model": cfg.model.name, "dataset": cfg.data.name, "steps": steps,
      "rewind_steps": list(cfg.lmc.rewind_steps), "children": 2, "alphas": 31,
      "one_child_s": round(child, 3), "analysis_s": round(analysis_warm, 3),
      "parts_s": t,
      "analysis_over_one_child": round(analysis_warm / child, 2),
      "beyond_trainings_fraction": round(t["paths_s"] / trainings, 3),
      "cold": {"one_child_s": round(child_cold, 3),
               "analysis_s": round(analysis_cold, 3),
               "parts_s": cold["timings_s"],
               "analysis_over_one_child": round(analysis_cold / child_cold,
                                                2)},
      "test_barrier_by_k": {r["rewind_step"]: round(r["test_barrier"]["mean"],
                                                    4) for r in warm["rows"]},
  }, args.out)


if __name__ == "__main__":
  main()
