"""Factor study: *when* do tickets win? (Ma et al. 2021, Sec. 5.)

``jaxticket study --factor model.width=0.5,1,2`` runs the full sanity check
(:mod:`jaxticket.experiments.sanity.sanity`) once per value of one config key, each in its own
sub-workdir (so finished values are reused), and tabulates per value: best
dense accuracy, best ticket accuracy, the ticket's gaps to its random
re-initialization (LT-RR) and to one-shot pruning (IMP-OMP), and the largest
sparsity with a jackpot / secondary-prize ticket.

Ma et al.'s guideline, which a study tests on the offline models: with
residual connections IMP beats OMP and small LRs help find tickets, without
them neither holds; more redundant (wider) networks allow sparser tickets;
when the network prefers large LRs the original initialization stops
mattering (LT ~ RR).
"""

from __future__ import annotations

import os
import time
from typing import Any

import ml_collections

from jaxticket import config as config_lib
from jaxticket.experiments.study import report
from jaxticket.experiments.sanity import sanity
from jaxticket.experiments.summaries import StudySummary
from jaxticket.core.workdir import Workdir




def _at(summary: dict, level: int, lr: float, setting: str) -> float | None:
  for r in summary["rows"]:
    if r["level"] == level and r["lr"] == lr and setting in r:
      return r[setting]["mean"]
  return None


def study_row(value_text: str, summary: dict) -> dict:
  """One table row from a finished sanity summary."""
  verdicts = summary["verdicts"]
  last = max(verdicts, key=lambda v: v["sparsity"])
  dense_lr = last["reference_lrs"]["dense"]
  ticket_lr = max((p for p in last["per_lr"]), key=lambda p: p["ticket_val"])[
      "lr"]
  ticket = _at(summary, last["level"], ticket_lr, "ticket")
  omp = _at(summary, last["level"], ticket_lr, "omp")
  return {
      "value": value_text,
      "best_dense_accuracy": _at(summary, 0, dense_lr, "dense"),
      "dense_lr": dense_lr,
      "sparsity": last["sparsity"],
      "best_ticket_accuracy": ticket,
      "ticket_lr": ticket_lr,
      "lt_rr_gap": [p for p in last["per_lr"] if p["lr"] == ticket_lr][0][
          "gaps"]["vs_random_reinit"]["gap"],
      "imp_omp_gap": None if omp is None else ticket - omp,
      "largest_jackpot_sparsity": summary["largest_jackpot_sparsity"],
      "largest_secondary_sparsity": summary["largest_secondary_sparsity"],
      "class_at_sparsity": last["class"],
  }


def run(cfg: ml_collections.ConfigDict, factor: str, workdir: str,
        progress: bool = True) -> StudySummary:
  """Run the sanity check per factor value; write the study summary."""
  key, values, texts = config_lib.parse_axis(cfg, factor)
  for text in texts:  # every value's sanity config, before any compute
    sub = cfg.copy_and_resolve_references()
    config_lib.apply_overrides(sub, [f"{key}={text}"])
    try:
      sanity.validate(sub)
    except config_lib.ConfigError as e:
      raise config_lib.ConfigError(f"--factor {key}={text}: {e}") from None
  wd = Workdir(workdir, "study")
  t0 = time.time()
  rows = []
  for value, text in zip(values, texts):
    sub = cfg.copy_and_resolve_references()
    config_lib.apply_overrides(sub, [f"{key}={text}"])
    print(f"== study: {key}={text}", flush=True)
    summary = sanity.run(sub, os.path.join(wd.path, f"{key}={text}"),
                         progress=progress)
    rows.append(study_row(text, summary))
  result = StudySummary(factor=key, values=texts, rows=rows,
                        wall_time_s=round(time.time() - t0, 2),
                        model=cfg.model.name, dataset=cfg.data.name)
  report.write_study_report(wd, result)
  wd.write_summary(result)
  return result


def command(cfg: ml_collections.ConfigDict, args: Any) -> dict:
  """``jaxticket study --factor KEY=V1,V2``."""
  return run(cfg, args.factor, args.workdir, progress=not args.no_progress)


def console(summary: StudySummary) -> str:
  return report.study_table(summary)
