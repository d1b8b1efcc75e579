"""The teacher-student part of ``jaxticket theory`` (Zhang, Wang, Liu, Chen,
Xiong, NeurIPS 2021): how many samples a pruned one-hidden-layer ReLU
network needs, and how fast it converges.

For every number of kept inputs per teacher unit r (``theory.teacher.kept``)
a teacher ``y = (1/K) sum_j relu(w_j* . (m_j * x))`` on x ~ N(0, I_d)
labels N Gaussian samples (:mod:`jaxticket.data.teacher`). Students of the
same architecture (output layer fixed at 1/K, no biases, as in the paper)
train the hidden kernel only, under

- ``teacher_mask``: the teacher's mask (the "winning ticket": K r weights),
- ``random_mask``: a random mask with r inputs per unit,
- ``dense``: no mask (K d weights),

with full-batch SGD with momentum (heavy ball; the paper analyses
accelerated GD) on the regression task's 0.5 (f(x) - y)^2, through the
platform's Trainer with a static mask (``Parametrization`` trains
``Dense_0/kernel`` only). ``init=local`` starts each student within
``init_radius`` (relative, per unit) of the teacher's weights, masked by its
own mask: the paper's guarantee is local (a tensor-method initialization in
the convex region around w*), so failures then measure samples, not
optimization; ``init=random`` uses the model's He-normal init.

A trial succeeds when its test error E(f - f*)^2 / E f*^2 is below
``threshold``. Per (N, r) one program trains students x trials replicas
(N, the training set size, is a shape; r changes the data). Reported: the
success rate per (student, r, N) (phase diagram), the smallest N with a
success rate >= 1/2 against the number of unpruned hidden weights K r
(the paper: proportional), and the test error along training at the
largest N with the steps until its median falls below ``converge_to``
(the paper: faster convergence the sparser the teacher).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.workdir import Workdir
from jaxticket.data import teacher as teacher_lib

PyTree = Any
HIDDEN = r"^Dense_0/kernel$"


def student_masks(teacher: teacher_lib.Teacher, students: list[str],
                  trials: int, rng: np.random.Generator) -> np.ndarray:
  """(students x trials, d, K) bool masks, student-major."""
  d, k = teacher.mask.shape
  r = int(teacher.mask[:, 0].sum())
  out = []
  for name in students:
    for _ in range(trials):
      if name == "teacher_mask":
        out.append(teacher.mask)
      elif name == "dense":
        out.append(np.ones((d, k), bool))
      else:
        m = np.zeros((d, k), bool)
        for j in range(k):
          m[rng.choice(d, r, replace=False), j] = True
        out.append(m)
  return np.stack(out)


def initial_kernels(teacher: teacher_lib.Teacher, masks: np.ndarray,
                    how: str, radius: float, he: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
  """Per replica, the student's starting hidden kernel (masked)."""
  if how == "random":
    return np.where(masks, he, 0.0)
  kept = masks.sum(axis=1, keepdims=True).clip(min=1)
  norm = np.linalg.norm(teacher.weights, axis=0, keepdims=True)
  noise = rng.normal(size=masks.shape) * radius * norm / np.sqrt(kept)
  return np.where(masks, teacher.weights[None] + noise, 0.0)


def train_cell(cfg: ml_collections.ConfigDict, kept: int, n: int,
               progress: Any, wd: Workdir | None = None) -> dict:
  """Train every student x trial of one (r, N) cell; per replica the final
  relative test error and its curve over training."""
  t = cfg.theory.teacher
  teacher = teacher_lib.make_teacher(t.dim, t.hidden, kept,
                                     seed=cfg.seed * 7919 + kept)
  data = teacher_lib.teacher_dataset(
      teacher, n, max(1, n // 4), t.test_examples,
      seed=cfg.seed * 104729 + 31 * kept + n, noise=t.noise)
  axis = ReplicaAxis.of(student=list(t.students), trial=range(t.trials))
  r = axis.size
  model = models_lib.MLP((t.hidden,), 1)
  recipe = optim.Recipe(steps=t.steps, batch_size=n, optimizer="sgd",
                        momentum=t.momentum, schedule="constant")
  prog = step_lib.Program(model=model, task=tasks.get("regression"),
                          recipe=recipe, normalize=data.normalize,
                          parametrization=Parametrization(HIDDEN),
                          prunable=HIDDEN)
  trainer = loop_lib.Trainer(prog, data, shard=False)
  seeds = [cfg.seed * 1000 + i for i in range(r)]
  state = trainer.init(loop_lib.replica_keys(seeds))
  rng = np.random.default_rng(cfg.seed * 15485863 + 7 * kept + n)
  masks = student_masks(teacher, list(t.students), t.trials, rng)
  he = np.asarray(jax.device_get(state.params["Dense_0"]["kernel"]))
  w0 = initial_kernels(teacher, masks, t.init, t.init_radius, he, rng)
  params = dict(state.params)
  params["Dense_0"] = {"kernel": jnp.asarray(w0, jnp.float32),
                       "bias": jnp.zeros_like(params["Dense_0"]["bias"])}
  params["head"] = {"kernel": jnp.full_like(params["head"]["kernel"],
                                            1.0 / t.hidden),
                    "bias": jnp.zeros_like(params["head"]["bias"])}
  mask = {"Dense_0": {"kernel": jnp.asarray(masks), "bias": None},
          "head": {"kernel": None, "bias": None}}
  state = trainer.restart(state.replace(params=params, mask=mask))
  hp = optim.stack_hparams([t.lr] * r, [0.0] * r)
  scale = 0.5 * float(np.mean(np.asarray(data.test_y, np.float64) ** 2))
  curve, steps = [], []

  labels = axis.labels()

  def on_eval(st, ev, losses):
    steps.append(int(np.asarray(st.step).min()))
    curve.append(np.asarray(ev.test_loss, np.float64) / scale)
    if wd is not None:
      wd.log_metrics([
          {"stage": "teacher_student", "kept": kept, "samples": n,
           "student": lab["student"], "trial": lab["trial"], "replica": i,
           "step": steps[-1], "train_loss": float(np.mean(losses[i, -1:])),
           "relative_test_error": float(curve[-1][i])}
          for i, lab in enumerate(labels)])

  trainer.train(state, hp, t.steps, t.eval_every, on_eval=on_eval,
                progress=progress)
  errors = curve[-1]
  errors = np.where(np.isfinite(errors), errors, np.inf)
  return {"axis": axis, "errors": errors, "curve": np.stack(curve),
          "steps": steps, "unpruned": teacher.unpruned}


def run(cfg: ml_collections.ConfigDict, wd: Workdir, progress: bool) -> dict:
  """The phase diagram, the samples needed and the convergence curves
  (evaluations logged to metrics.jsonl, stage ``teacher_student``)."""
  t = cfg.theory.teacher
  wd.truncate_metrics(lambda row: row.get("stage") != "teacher_student")
  students = list(t.students)
  kept_values, samples = [int(k) for k in t.kept], [int(n) for n in t.samples]
  success = {s: np.zeros((len(kept_values), len(samples))) for s in students}
  median = {s: np.zeros((len(kept_values), len(samples))) for s in students}
  curves = {}
  cells = len(kept_values) * len(samples)
  with tqdm(total=cells * t.steps, disable=not progress, unit="step",
            desc=f"teacher-student ({cells} cells)", leave=True,
            dynamic_ncols=True) as bar:
    for i, kept in enumerate(kept_values):
      for j, n in enumerate(samples):
        cell = train_cell(cfg, kept, n, bar, wd)
        for s, idx in cell["axis"].groups("student").items():
          err = cell["errors"][idx]
          success[s][i, j] = float(np.mean(err < t.threshold))
          median[s][i, j] = float(np.median(err))
          if n == max(samples):
            curves.setdefault(s, {})[str(kept)] = np.median(
                cell["curve"][:, idx], axis=1).tolist()
        steps = cell["steps"]
  needed = {s: [_needed(samples, success[s][i]) for i in
                range(len(kept_values))] for s in students}
  unpruned = [int(t.hidden * k) for k in kept_values]
  return {
      "kept": kept_values, "samples": samples, "students": students,
      "unpruned": unpruned, "dim": int(t.dim), "hidden": int(t.hidden),
      "success": {s: v.tolist() for s, v in success.items()},
      "median_error": {s: v.tolist() for s, v in median.items()},
      "samples_needed": needed,
      "needed_slope": {s: _slope(unpruned, needed[s]) for s in students},
      "curve_steps": steps, "curves": curves,
      "steps_to_threshold": {
          s: {k: _first_below(steps, c, t.converge_to)
              for k, c in v.items()} for s, v in curves.items()},
      "threshold": float(t.threshold), "converge_to": float(t.converge_to),
      "trials": int(t.trials),
      "init": t.init}


def _needed(samples: list[int], rate: np.ndarray) -> int | None:
  """The smallest N whose success rate is >= 1/2 and stays so for every
  larger N (None if none)."""
  ok = rate >= 0.5
  for j in range(len(samples)):
    if ok[j:].all():
      return samples[j]
  return None


def _slope(x: list[int], y: list[int | None]) -> float | None:
  """Log-log slope of the samples needed on the unpruned weights."""
  pts = [(a, b) for a, b in zip(x, y) if b is not None]
  if len(pts) < 2 or len({a for a, _ in pts}) < 2:
    return None
  a, b = np.log(np.array(pts, float)).T
  return float(np.polyfit(a, b, 1)[0])


def _first_below(steps: list[int], curve: list[float], threshold: float
                 ) -> int | None:
  for s, v in zip(steps, curve):
    if v < threshold:
      return int(s)
  return None


__all__ = ["run", "train_cell", "student_masks", "initial_kernels"]
