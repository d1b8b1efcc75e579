"""``jaxticket theory``: two theorems about subnetworks, seen on a laptop.

- ``greedy`` (Ye et al., ICML 2020): greedy forward selection of units from
  a trained MLP; loss gap vs subnetwork size against L1-norm and random
  selection, and layer-wise pruning with fine-tuning
  (:mod:`jaxticket.experiments.theory.greedy_part`).
- ``teacher_student`` (Zhang et al., NeurIPS 2021): students of a pruned
  one-hidden-layer ReLU teacher trained with its mask, a random mask or
  dense, over samples N x teacher density: success-rate phase diagram,
  samples needed vs unpruned hidden weights, convergence speed
  (:mod:`jaxticket.experiments.theory.teacher_part`).

Resume: each finished part writes ``stages/<part>.json``; a rerun skips it
(the dense sub-run of ``greedy`` resumes like ``train``).
"""

from __future__ import annotations

import time
from typing import Any

import ml_collections

from jaxticket import config as config_lib
from jaxticket.experiments import common
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.summaries import TheorySummary
from jaxticket.experiments.theory import (greedy_part, report, settings,
                                          teacher_part)


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> TheorySummary:
  config_lib.validate(cfg)
  settings.validate(cfg)
  wd, done = common.open_run(cfg, workdir, "theory", TheorySummary)
  if done is not None:
    return done
  t0 = time.time()
  stages = Stages(wd)
  timings, results = {}, {"greedy": None, "teacher_student": None}
  if "greedy" in cfg.theory.parts:
    t = time.time()
    data = common.load_data(cfg)
    results["greedy"] = stages.get("greedy") or stages.put(
        "greedy", greedy_part.run(cfg, wd, data, progress))
    timings["greedy"] = round(time.time() - t, 2)
  if "teacher_student" in cfg.theory.parts:
    t = time.time()
    results["teacher_student"] = stages.get("teacher_student") or \
        stages.put("teacher_student", teacher_part.run(cfg, wd, progress))
    timings["teacher_student"] = round(time.time() - t, 2)
  summary = TheorySummary(
      greedy=results["greedy"], teacher_student=results["teacher_student"],
      model=cfg.model.name, dataset=cfg.data.name, timings_s=timings,
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(TheorySummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> TheorySummary:
  """``jaxticket theory``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: TheorySummary) -> str:
  return report.console_text(summary)
