"""Task-incremental subnetworks in one shared net (``jaxticket continual``).

DSN (Gao et al., data-free subnetworks) and HAT (Serra et al. 2018) learn
a sequence of tasks in ONE network, each task with its own neuron-wise
mask (annealed sigmoid gates, :mod:`jaxticket.models.gated_mlp`) that may
reuse earlier tasks' units, while the weights earlier tasks use get no
gradient: zero forgetting. The task id is known at test time; the output
is multi-head (task t reads its own block of the head's outputs).

Sequence (``continual.sequence``) from the ``data`` section's dataset:
``rotated`` (cyclic shifts, :func:`rotated`), ``permuted`` (task t permutes the input positions with a fixed
permutation; task 0 the identity) or ``split`` (disjoint groups of classes,
labels renumbered; every task's splits cut to the smallest task's size so
all tasks share one compiled program).

Methods (``continual.methods``), each ONE compiled program whose replica
axis holds the seeds, trained stage by stage (task 0, 1, ...; a fresh
optimizer and step 0 per task, the data swapped with
``Trainer.use_data``): ``gated`` (HAT/DSN), ``fixed`` (random unit masks
per task with the gated method's unit counts, same protection),
``finetune`` (no gates, no protection), ``separate`` (a fresh dense net
per task: no sharing). After every stage every task's
test accuracy is measured: the accuracy matrix A[i, j] per seed, and from
it ACC, BWT and FWT (:mod:`.metrics`; FWT against the untrained net).

``dsn`` is ``gated`` plus DSN's data-free replay (Sec. 3.3;
:mod:`.replay`, following the reference code): after every task i >= 1,
the earlier tasks in decreasing mask similarity to task i get impressions
synthesized from the network alone and may take up units other tasks use
(only their gate rows on those units and head block change), kept only if
their validation accuracy rises; the first rejection ends the stage's
replay. Its BWT against ``gated``'s (same seeds, same training otherwise)
is the replay's effect.
Sequences also include ``rotated`` (MNIST-1D's cyclic shift,
:func:`rotated`).

``separate_imp`` is a separate IMP ticket per task (no sharing):
``continual.imp_levels`` rounds of train / prune ``imp_fraction`` of each
kernel by magnitude (the pruning package's ``prune``, layer-wise, head
included) / rewind to that net's init, then trained at
``(1 - imp_fraction) ** imp_levels`` density (default 51.2%).

Not done yet (later slices): checkpoints inside a method (a killed run redoes the unfinished
method; finished methods are ``stages/METHOD.json``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket import pruning
from jaxticket import tasks as tasks_lib
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.stats import mean_ci
from jaxticket.core.workdir import Workdir
from jaxticket.experiments import common
from jaxticket.experiments.continual import metrics, replay, report, settings
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.summaries import ContinualSummary
from jaxticket.models import gated_mlp

PyTree = Any

MODE_OF = {"gated": "gated", "dsn": "gated", "fixed": "fixed",
           "finetune": "none",
           "separate": "none", "separate_imp": "none"}
#: Seed offset of the fixed method's random unit masks.
MASK_SEED_OFFSET = 30_000
#: Key offset of DSN's replay (impressions' init and soft labels).
REPLAY_SEED_OFFSET = 40_000


# --------------------------------------------------------------------------
# The task sequence.


def build_tasks(cfg: ml_collections.ConfigDict, data: Any) -> list[Any]:
  """The datasets of the sequence (:data:`settings.SEQUENCES`)."""
  c = cfg.continual
  t = int(c.tasks)
  if c.sequence == "rotated":
    return rotated(data, t)
  if c.sequence == "permuted":
    rng = np.random.default_rng(int(c.permutation_seed))
    d = int(np.prod(data.input_shape))
    out = []
    for i in range(t):
      perm = np.arange(d) if i == 0 else rng.permutation(d)
      move = lambda x: x.reshape(len(x), d)[:, perm].reshape(x.shape)
      out.append(dataclasses.replace(
          data, train_x=move(data.train_x), val_x=move(data.val_x),
          test_x=move(data.test_x)))
    return out
  settings.check_split(t, data.num_classes)
  per = data.num_classes // t
  groups = [np.arange(i * per, (i + 1) * per) for i in range(t)]
  split = {}
  for name in ("train", "val", "test"):
    x, y = getattr(data, f"{name}_x"), getattr(data, f"{name}_y")
    picks = [np.flatnonzero(np.isin(y, g)) for g in groups]
    n = min(len(p) for p in picks)
    split[name] = [(x[p[:n]], (y[p[:n]] - g[0]).astype(y.dtype))
                   for p, g in zip(picks, groups)]
  if min(len(split["train"][i][1]) for i in range(t)) < cfg.train.batch_size:
    raise config_lib.ConfigError(
        f"train.batch_size={cfg.train.batch_size} exceeds a split task's "
        "training examples; lower it.")
  return [dataclasses.replace(
      data, train_x=split["train"][i][0], train_y=split["train"][i][1],
      val_x=split["val"][i][0], val_y=split["val"][i][1],
      test_x=split["test"][i][0], test_y=split["test"][i][1],
      num_classes=per) for i in range(t)]


def rotation_shift(task: int, tasks: int, length: int) -> int:
  """The cyclic shift of task ``task``: ``task * length // tasks``."""
  return task * length // tasks


def rotated(data: Any, tasks: int) -> list[Any]:
  """'Rotated' MNIST-1D: MNIST-1D is a 1-D signal, so we define rotation
  as a cyclic shift of the signal (the last axis) by
  :func:`rotation_shift` positions -- a rotation of the circle the signal
  is laid out on, not the image rotation of rotated MNIST (DSN's
  benchmark). The signal axis is the first after the batch (MNIST-1D's
  inputs are [N, 40, 1]). Labels and example order are unchanged."""
  length = data.train_x.shape[1]
  out = []
  for i in range(tasks):
    k = rotation_shift(i, tasks, length)
    move = lambda x, k=k: np.roll(x, k, axis=1)
    out.append(dataclasses.replace(
        data, train_x=move(data.train_x), val_x=move(data.val_x),
        test_x=move(data.test_x)))
  return out


# --------------------------------------------------------------------------
# One method: one program, trained task by task.


def make_replay(cfg: ml_collections.ConfigDict, tasks: list[Any]
                ) -> tuple[callable, callable]:
  """DSN's replay of one earlier task and the tasks' mask similarity, both
  vmapped over the replicas (one program per shape: k, i and the
  still-active flag are array arguments; every task's validation split is
  padded to one shape and indexed by k inside)."""
  c = cfg.continual
  widths = tuple(int(w) for w in c.widths)
  d0 = tasks[0]
  kw = dict(widths=widths, tasks=int(c.tasks), classes=d0.num_classes,
            mode="gated", smax=float(c.smax))
  model = gated_mlp.GatedMLP(**kw)
  # steps_per_epoch 2, step 1: the training forward at s = s_max
  model_train = gated_mlp.GatedMLP(**kw, steps_per_epoch=2)
  apply = lambda p, x: model.apply({"params": p}, x, train=False)
  apply_train = lambda p, x: model_train.apply({"params": p}, x, train=True,
                                               step=jnp.int32(1))
  x0 = np.asarray(d0.normalize(d0.train_x[:1]))
  size = max(len(d.val_y) for d in tasks)
  vx, vy, vw = [], [], []
  for d in tasks:
    x = np.asarray(d.normalize(d.val_x), np.float32)
    pad = size - len(x)
    vx.append(np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]))
    vy.append(np.concatenate([np.asarray(d.val_y),
                              np.zeros((pad,), np.asarray(d.val_y).dtype)]))
    vw.append(np.concatenate([np.ones(len(x)), np.zeros(pad)]))
  vx, vy, vw = (jnp.asarray(np.stack(a)) for a in (vx, vy, vw))
  layers = len(widths)

  def one(params, key, k, active):
    p = {**params, "task": k.astype(params["task"].dtype)}
    out = replay.replay_task(
        apply, apply_train, p, key, k, active, (vx[k], vy[k], vw[k]),
        d0.num_classes, x0.shape[1:], layers,
        int(c.replay_buffer), int(c.replay_synth_steps),
        float(c.replay_synth_lr), float(c.replay_tau), float(c.replay_beta),
        int(c.replay_steps), float(c.replay_lr),
        last_only=c.replay_units == "last",
        clip=float(c.replay_clip) or None)
    return out._replace(params={**out.params, "task": params["task"]})

  sim = lambda params, i: replay.task_similarity(params, i, layers)
  return loop_lib.vmapped(one), loop_lib.vmapped(sim)


def make_program(cfg: ml_collections.ConfigDict, method: str, task_data: Any
                 ) -> step_lib.Program:
  """The static program of ``method`` (gated: clocked, clamped logits)."""
  c = cfg.continual
  mode = MODE_OF[method]
  penalized = mode == "gated" and c.lamb > 0
  spe = step_lib.steps_per_epoch(len(task_data.train_y), cfg.train.batch_size)
  model = gated_mlp.GatedMLP(
      widths=tuple(int(w) for w in c.widths), tasks=int(c.tasks),
      classes=task_data.num_classes, mode=mode, smax=float(c.smax),
      steps_per_epoch=spe, penalty=penalized)
  task = common.make_task(cfg, task_data)
  if penalized:
    task = tasks_lib.Penalized(task, float(c.lamb))
  return step_lib.Program(
      model=model, task=task,
      recipe=config_lib.recipe(cfg, False), normalize=task_data.normalize,
      parametrization=Parametrization(
          gated_mlp.TRAINABLE,
          project=gated_mlp.clamp_gates if mode == "gated" else None),
      prunable=r"(^|/)kernel$", clocked=mode == "gated")  # all-kept mask


def with_task(params: PyTree, t: int) -> PyTree:
  """Stacked params whose forward computes task ``t``."""
  return {**params, "task": jnp.full_like(params["task"], t)}


def random_gates(seeds: list[int], counts: np.ndarray, widths: tuple
                 ) -> list[np.ndarray]:
  """Per layer [R, T, H] 0/1 unit masks with ``counts[t, l]`` units per
  task, drawn per seed (NumPy, host)."""
  out = []
  for l, h in enumerate(widths):
    g = np.zeros((len(seeds), counts.shape[0], h), np.float32)
    for r, seed in enumerate(seeds):
      rng = np.random.default_rng([seed + MASK_SEED_OFFSET, l])
      for t in range(counts.shape[0]):
        g[r, t, rng.choice(h, int(counts[t, l]), replace=False)] = 1.0
    out.append(g)
  return out


def evaluate_tasks(trainer: loop_lib.Trainer, state: step_lib.TrainState,
                   tasks: list[Any]) -> tuple[np.ndarray, np.ndarray]:
  """(test, val) accuracy [R, T] of every task (same compiled program)."""
  test, val = [], []
  for j, d in enumerate(tasks):
    trainer.use_data(d)
    ev = trainer.evaluate(state.replace(params=with_task(state.params, j)))
    test.append(np.asarray(ev.test_accuracy))
    val.append(np.asarray(ev.val_accuracy))
  return np.stack(test, 1), np.stack(val, 1)


def train_method(cfg: ml_collections.ConfigDict, method: str,
                 tasks: list[Any], seeds: list[int],
                 counts: np.ndarray | None = None, wd: Workdir | None = None,
                 keep_params: bool = False) -> dict:
  """Train ``method`` through the sequence (one program, seeds on its
  replica axis). Returns the accuracy matrices [R, T, T] (test, val), the
  untrained accuracies [R, T], the hard unit counts [R, T, L], and with
  ``keep_params`` the host params after each stage."""
  c = cfg.continual
  widths = tuple(int(w) for w in c.widths)
  layers = len(widths)
  mode = MODE_OF[method]
  prog = make_program(cfg, method, tasks[0])
  trainer = loop_lib.Trainer(prog, tasks[0], replica_loop=cfg.train.replica_loop,
                             shard=False)
  state = trainer.init(loop_lib.replica_keys(seeds))
  replay_fn, sim_fn = make_replay(cfg, tasks) if method == "dsn" else (
      None, None)
  imp_levels = int(c.imp_levels) if method == "separate_imp" else 0
  prune_fn = loop_lib.vmapped(lambda p, m: pruning.prune(
      p, m, jnp.asarray(float(c.imp_fraction)), scorer="magnitude",
      strategy="layerwise"))
  remask = loop_lib.vmapped(masks_lib.apply)
  replay_log = []
  if mode == "fixed":
    if counts is None:
      counts = np.full((len(tasks), layers), 0, np.int64) + np.array(
          [max(1, round(c.random_density * h)) for h in widths])
    params = dict(state.params)
    for l, g in enumerate(random_gates(seeds, counts, widths)):
      params[f"fixed_{l}"] = jnp.asarray(g)
    state = state.replace(params=params)
  r = len(seeds)
  hp = optim.stack_hparams([cfg.train.lr] * r, [0.0] * r)
  absorb = loop_lib.vmapped(
      lambda p, t: gated_mlp.absorb(p, mode, t, layers))
  gates = loop_lib.vmapped(
      lambda p, t: jnp.stack([g.sum() for g in gated_mlp.task_gates(
          p, mode, t, layers)]))
  fold = loop_lib.vmapped(jax.random.fold_in)
  first_keys = loop_lib.replica_keys(seeds)
  init_test, init_val = evaluate_tasks(trainer, state, tasks)
  steps = int(cfg.train.steps)
  every = max(1, min(int(cfg.train.eval_every) or steps, steps))
  acc_test, acc_val, unit_counts, snapshots = [], [], [], []
  ti = lambda i: jnp.full((r,), i, jnp.int32)
  for i, d in enumerate(tasks):
    if method in ("separate", "separate_imp") and i > 0:  # a fresh net
      state = trainer.init(fold(first_keys, ti(i)))
      fresh = evaluate_tasks(trainer, state, tasks)
      init_test[:, i], init_val[:, i] = fresh[0][:, i], fresh[1][:, i]
    trainer.use_data(d)
    state = state.replace(
        params=with_task(state.params, i), step=jnp.zeros_like(state.step),
        data_key=fold(state.data_key, ti(i)))
    state = trainer.restart(state)

    def log(st, ev, losses, i=i):
      if wd is None:
        return
      ev = jax.device_get(ev)
      step = int(np.asarray(jax.device_get(st.step)).min())
      wd.log_metrics([{
          "method": method, "stage": i, "task": i, "seed": s, "step": step,
          "train_loss": float(np.asarray(losses)[k, -1]),
          "val_accuracy": float(ev.val_accuracy[k]),
          "test_accuracy": float(ev.test_accuracy[k])}
          for k, s in enumerate(seeds)])

    # copies: the training program donates the state's buffers
    theta0, dense_mask = jax.tree.map(jnp.copy, (state.params, state.mask)) \
        if imp_levels else (None, None)
    for _ in range(imp_levels):  # IMP (Frankle & Carbin): train, prune
      state = trainer.train(state, hp, until=steps, eval_every=every)
      mask = prune_fn(state.params, state.mask)
      state = trainer.restart(state.replace(  # rewind to this net's init
          params=remask(theta0, mask), mask=mask,
          step=jnp.zeros_like(state.step)))
    state = trainer.train(state, hp, until=steps, eval_every=every,
                          on_eval=log)
    if imp_levels:  # the next task's fresh net starts dense
      state = state.replace(mask=dense_mask)
    unit_counts.append(np.asarray(gates(state.params, ti(i))))
    state = state.replace(params=absorb(state.params, ti(i)))
    # DSN (newrun.py): earlier tasks in decreasing mask similarity to
    # task i, each replayed in turn; the first rejection stops the rest
    # (per replica: the orders differ between seeds).
    if replay_fn is not None and i > 0:
      sim = np.asarray(sim_fn(state.params, ti(i)))[:, :i]  # [R, i]
      order = np.argsort(-sim, axis=1, kind="stable")
      active = np.ones((r,), bool)
      for rank in range(i):
        k = order[:, rank].astype(np.int32)
        keys = fold(fold(first_keys, ti(REPLAY_SEED_OFFSET + i)),
                    jnp.asarray(k))
        out = replay_fn(state.params, keys, jnp.asarray(k),
                        jnp.asarray(active))
        state = state.replace(params=out.params)
        accepted = np.asarray(out.accepted).astype(bool)
        # a non-finite loss is stored as None (JSON has no NaN) and the
        # seed flagged diverged (the report says so)
        fin = lambda v: [float(x) if np.isfinite(x) else None
                         for x in np.asarray(v).tolist()]
        replay_log.append({
            "stage": i, "rank": rank, "task": k.tolist(),
            "similarity": np.take_along_axis(
                sim, k[:, None], 1)[:, 0].tolist(),
            "active": active.tolist(),
            "synth_kl_first": np.asarray(out.synth_losses[:, 0]).tolist(),
            "synth_kl_last": np.asarray(out.synth_losses[:, -1]).tolist(),
            "distill_first": fin(out.replay_losses[:, 0]),
            "distill_last": fin(out.replay_losses[:, -1]),
            "diverged": np.asarray(out.diverged).astype(bool).tolist(),
            "val_before": np.asarray(out.val_before).tolist(),
            "val_after": np.asarray(out.val_after).tolist(),
            "accepted": accepted.tolist()})
        active = active & accepted
    if keep_params:
      snapshots.append(jax.device_get(state.params))
    test, val = evaluate_tasks(trainer, state, tasks)
    acc_test.append(test)
    acc_val.append(val)
  acc_test, acc_val = np.stack(acc_test, 1), np.stack(acc_val, 1)
  if method in ("separate", "separate_imp"):  # net j answers task j
    for a, untrained in ((acc_test, init_test), (acc_val, init_val)):
      diag = np.diagonal(a, axis1=1, axis2=2).copy()
      for i in range(len(tasks)):
        a[:, i, : i + 1] = diag[:, : i + 1]
        a[:, i, i + 1:] = untrained[:, i + 1:]
  out = {"test": acc_test, "val": acc_val,
         "init": init_test, "units": np.stack(unit_counts, 1),
         "traces": dict(trainer.traces), "replay": replay_log}
  if keep_params:
    out["params"] = snapshots
  return out


# --------------------------------------------------------------------------
# The run.


def stat(values: np.ndarray) -> dict:
  """Mean, std, 95% t-interval (None with one seed) and the seeds' values."""
  values = np.asarray(values, np.float64)
  lo, hi = mean_ci(values)
  return {"mean": float(values.mean()), "std": float(values.std()),
          "ci_low": lo, "ci_high": hi,
          "per_seed": [float(v) for v in values]}


def method_row(method: str, res: dict, widths: tuple) -> dict:
  a, b = res["test"], res["init"]
  return {
      "method": method,
      "accuracy_matrix": np.mean(a, 0).tolist(),
      "accuracy_matrix_per_seed": a.tolist(),
      "val_accuracy_matrix": np.mean(res["val"], 0).tolist(),
      "untrained_accuracy": np.mean(b, 0).tolist(),
      "average_accuracy": stat(metrics.average_accuracy(a)),
      "bwt": stat(metrics.bwt(a)),
      "fwt": stat(metrics.fwt(a, b)),
      "unit_fraction": (np.mean(res["units"], 0) / np.asarray(widths)
                        ).tolist(),
      "wall_time_s": res.get("wall_time_s", 0.0),
      "replay": res.get("replay", []),
  }


def validate(cfg: ml_collections.ConfigDict) -> None:
  config_lib.validate(cfg)
  settings.validate(cfg)


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> ContinualSummary:
  """The whole experiment; writes the workdir and returns the summary."""
  del progress  # no bar yet; metrics.jsonl holds every evaluation
  validate(cfg)
  data = common.load_data(cfg)
  tasks = build_tasks(cfg, data)  # bad sequences fail before the claim
  wd, done = common.open_run(cfg, workdir, "continual", ContinualSummary)
  if done is not None:
    return done
  t0 = time.time()
  seeds = [cfg.seed + i for i in range(cfg.seeds)]
  widths = tuple(int(w) for w in cfg.continual.widths)
  st = Stages(wd)
  rows, counts = [], None
  # gated first: the fixed masks take its unit counts
  order = sorted(cfg.continual.methods, key=lambda m: m != "gated")
  for method in order:
    row = st.get(method)
    if row is None:
      # a method killed part-way is redone whole: drop its old rows
      wd.truncate_metrics(lambda r, m=method: r.get("method") != m)
      start = time.time()
      res = train_method(cfg, method, tasks, seeds,
                         counts if method == "fixed" else None, wd)
      res["wall_time_s"] = round(time.time() - start, 2)
      row = st.put(method, method_row(method, res, widths))
    if method == "gated":
      counts = np.rint(np.asarray(row["unit_fraction"]) *
                       np.asarray(widths)).astype(int).clip(1)
    rows.append(row)
  rows.sort(key=lambda r: list(cfg.continual.methods).index(r["method"]))
  summary = ContinualSummary(
      rows=rows, methods=list(cfg.continual.methods),
      sequence=cfg.continual.sequence, tasks=int(cfg.continual.tasks),
      classes_per_task=int(tasks[0].num_classes), widths=list(widths),
      seeds=seeds, dataset=cfg.data.name, steps_per_task=int(cfg.train.steps),
      head="multi-head (task t reads its own output block)",
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(ContinualSummary)


def command(cfg: ml_collections.ConfigDict, args) -> ContinualSummary:
  """``jaxticket continual``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: ContinualSummary) -> str:
  return report.table(summary)


__all__ = ["run", "command", "console", "build_tasks", "train_method",
           "make_program", "random_gates", "validate", "MODE_OF"]
