"""The ``theory`` config section: greedy forward selection (Ye et al.,
ICML 2020) and the teacher-student experiment on pruned one-hidden-layer
networks (Zhang et al., NeurIPS 2021)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import (check_choice, check_distinct,
                                   check_nonempty, check_range, is_number)

PARTS = ("greedy", "teacher_student")
STUDENTS = ("teacher_mask", "random_mask", "dense")
INITS = ("local", "random")
GREEDY_MODELS = ("mlp", "lenet_300_100")


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.parts = PARTS
  c.seeds = 2  # trained wide networks (greedy part)
  g = c.greedy = ml_collections.ConfigDict()
  g.candidates = 50  # units sampled per step (the authors' num_evaluate)
  # stop a layer at train accuracy >= (1 - tol) x the net's before it
  g.tolerance = 0.02  # (relative, as the authors' top1_tol)
  g.eval_examples = 2000  # training examples the loss/accuracy is read on
  g.max_units = 0  # loss-gap curve up to this many units (0 = all)
  g.random_draws = 3  # random selections averaged per size
  g.finetune_steps = 200  # fine-tune after each pruned layer
  g.finetune_lr = 0.01  # (SGD of the train section, constant LR)
  t = c.teacher = ml_collections.ConfigDict()
  t.dim = 20  # input dimension d
  t.hidden = 4  # hidden units K (output weights fixed at 1/K)
  t.kept = (2, 5, 10, 20)  # inputs each teacher unit keeps (r_j); d = dense
  t.samples = (10, 20, 40, 80, 160, 320)  # training set sizes N
  t.students = STUDENTS  # masks the students train under
  t.trials = 8  # students per (N, r, mask): the success rate's trials
  t.init = "local"  # near the teacher (Zhang et al.'s local region) or random
  t.init_radius = 0.5  # ||w0 - w*|| / ||w*|| per unit for init=local
  t.steps = 2000  # full-batch steps
  t.lr = 2.0  # SGD, momentum 0.9 (heavy ball), constant LR
  t.momentum = 0.9
  t.threshold = 0.01  # success: test error / E[y^2] below this
  t.noise = 0.0  # std of the label noise on training labels
  t.test_examples = 1000
  t.converge_to = 1e-4  # convergence speed: steps to this median error
  t.eval_every = 10  # steps between evaluations (convergence curves)
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """The ``:tiny`` size (called by ``config.shrink``)."""
  c = cfg.theory
  c.seeds = min(c.seeds, 2)
  c.greedy.eval_examples = min(c.greedy.eval_examples, 300)
  c.greedy.max_units = 6
  c.greedy.candidates = min(c.greedy.candidates, 5)
  c.greedy.random_draws = 2
  c.greedy.finetune_steps = min(c.greedy.finetune_steps, 4)
  t = c.teacher
  t.dim, t.hidden = 6, 2
  t.kept = (2, 6)
  t.samples = (4, 32)
  t.trials = 2
  t.steps = min(t.steps, 40)
  t.eval_every = 20
  t.test_examples = 200


def validate(cfg: ml_collections.ConfigDict) -> None:
  check_range("task.loss", cfg.task.loss == "ce", cfg.task.loss,
              "`theory` trains with cross-entropy only; use task.loss=ce")
  c = cfg.theory
  check_nonempty("theory.parts", c.parts, "greedy and/or teacher_student")
  for p in c.parts:
    check_choice("theory.parts", p, PARTS, "part")
  check_range("theory.seeds", c.seeds >= 1, c.seeds, "must be >= 1")
  g = c.greedy
  if "greedy" in c.parts:
    check_choice("model.name", cfg.model.name, GREEDY_MODELS,
                 "model for theory.greedy (an MLP)")
  check_range("theory.greedy.candidates", g.candidates >= 1, g.candidates,
              "must be >= 1 (units sampled per step; 50 in Ye et al.)")
  check_range("theory.greedy.tolerance", 0 <= g.tolerance < 1, g.tolerance,
              "a relative accuracy drop in [0, 1), e.g. 0.02")
  check_range("theory.greedy.eval_examples", g.eval_examples >= 1,
              g.eval_examples, "must be >= 1")
  check_range("theory.greedy.max_units", g.max_units >= 0, g.max_units,
              "must be >= 0 (0 = all units)")
  check_range("theory.greedy.random_draws", g.random_draws >= 1,
              g.random_draws, "must be >= 1")
  check_range("theory.greedy.finetune_steps", g.finetune_steps >= 0,
              g.finetune_steps, "must be >= 0")
  check_range("theory.greedy.finetune_lr", is_number(g.finetune_lr) and
              g.finetune_lr > 0, g.finetune_lr, "must be > 0 and finite")
  t = c.teacher
  check_range("theory.teacher.dim", t.dim >= 1, t.dim, "must be >= 1")
  check_range("theory.teacher.hidden", t.hidden >= 1, t.hidden,
              "must be >= 1")
  check_nonempty("theory.teacher.kept", t.kept, f"e.g. 2,5,{t.dim}")
  for r in t.kept:
    check_range("theory.teacher.kept", isinstance(r, int) and
                1 <= r <= t.dim, r, f"inputs kept per teacher unit, "
                f"integers in [1, theory.teacher.dim={t.dim}]")
  check_distinct("theory.teacher.kept", t.kept)
  check_nonempty("theory.teacher.samples", t.samples, "e.g. 10,40,160")
  for n in t.samples:
    check_range("theory.teacher.samples", isinstance(n, int) and n >= 1, n,
                "training set sizes, integers >= 1")
  check_distinct("theory.teacher.samples", t.samples)
  check_nonempty("theory.teacher.students", t.students,
            "teacher_mask, random_mask and/or dense")
  for s in t.students:
    check_choice("theory.teacher.students", s, STUDENTS, "student")
  check_distinct("theory.teacher.students", t.students)
  check_range("theory.teacher.trials", t.trials >= 1, t.trials,
              "must be >= 1")
  check_choice("theory.teacher.init", t.init, INITS, "init")
  check_range("theory.teacher.init_radius", is_number(t.init_radius) and
              t.init_radius >= 0, t.init_radius, "must be >= 0")
  check_range("theory.teacher.steps", t.steps >= 1, t.steps, "must be >= 1")
  check_range("theory.teacher.lr", is_number(t.lr) and t.lr > 0, t.lr,
              "must be > 0 and finite")
  check_range("theory.teacher.momentum", 0 <= t.momentum < 1, t.momentum,
              "must be in [0, 1)")
  check_range("theory.teacher.threshold", is_number(t.threshold) and
              t.threshold > 0, t.threshold,
              "a relative test error > 0, e.g. 0.01")
  check_range("theory.teacher.converge_to", is_number(t.converge_to) and
              t.converge_to > 0, t.converge_to,
              "a relative test error > 0, e.g. 1e-4")
  check_range("theory.teacher.noise", t.noise >= 0, t.noise, "must be >= 0")
  check_range("theory.teacher.test_examples", t.test_examples >= 1,
              t.test_examples, "must be >= 1")
  check_range("theory.teacher.eval_every", t.eval_every >= 1, t.eval_every,
              "must be >= 1")
