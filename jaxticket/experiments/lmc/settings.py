"""The ``lmc`` config section: linear mode connectivity and instability
(Frankle et al. 2020; Evci et al. 2022)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import check_range


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.rewind_steps = (0, 25, 100, 500)  # k: children spawn from theta_k
  c.children = 2  # copies per (k, seed), differing only in SGD noise
  c.alphas = 31  # interpolation points from 0 to 1
  c.bn_reestimate = True  # re-estimate BatchNorm statistics per alpha
  c.bn_batches = 20  # training batches (train.batch_size) for that
  c.train_examples = 10000  # training examples for the train barrier
  c.level = 0  # 0: the dense net; L > 0: the IMP ticket of level L
  c.imp_workdir = ""  # earlier imp/sanity workdir holding level L; ""=run
  c.stable_barrier = 0.02  # test error barrier below which k is stable
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.lmc`` (for ``jaxticket lmc`` and IMP's automatic rewind
  step; other commands ignore the section)."""
  m, steps = cfg.lmc, cfg.train.steps
  check_range("lmc.rewind_steps", len(m.rewind_steps) >= 1 and all(
      0 <= k < steps for k in m.rewind_steps), m.rewind_steps,
              f"one or more steps in [0, train.steps={steps})")
  check_range("lmc.children", m.children >= 2, m.children, "must be >= 2")
  check_range("lmc.alphas", m.alphas >= 3, m.alphas,
              "must be >= 3 (0 and 1 are the endpoints)")
  check_range("lmc.bn_batches", m.bn_batches >= 1, m.bn_batches,
              "must be >= 1")
  check_range("lmc.train_examples", m.train_examples >= 0, m.train_examples,
              "must be >= 0 (0 = all)")
  check_range("lmc.level", m.level >= 0, m.level,
              "must be >= 0 (0 = dense, L = IMP level L)")
  check_range("lmc.stable_barrier", m.stable_barrier > 0, m.stable_barrier,
              "must be > 0 (an error fraction, e.g. 0.02)")
