"""``jaxticket transfer``: lottery tickets in a pre-trained transformer and
how their masks transfer between tasks (Chen et al., NeurIPS 2020, "The
Lottery Ticket Hypothesis for Pre-trained BERT Networks"; issue 17).

Input: ``--config.init.checkpoint=DIR``, a ``jaxticket pretrain`` workdir
or a Hugging Face BERT folder (the encoder's options, tokenizer and
vocabulary are read from it: :func:`init_checkpoint.tokenizer_of`, so the
tasks are tokenized exactly as the pre-training was).

1. **IMP per task** (Chen et al. Sec. 3, Algorithm 1; BERT-Tickets code):
   fine-tune from the pre-trained weights theta_0 (a fresh task head); each
   round prunes, by global magnitude over every prunable leaf
   (models.transformer.PRUNABLE: Q, K, V, attention output, intermediate,
   output dense, pooler), ``transfer.prune_fraction`` of the ORIGINAL
   prunable weights (round r keeps exactly 1 - r * p of them; the code's
   LT_glue.py prunes 1/(10 - k) of the remaining weights at round k, i.e.
   10% of the original ones), then rewinds
   every pre-trained tensor to its value in theta_0 while the leaves the
   checkpoint lacks (the new ``pooler`` and ``head``) keep their trained
   values, restarts the optimizer and schedule, and fine-tunes again.
2. **Baselines at each round's sparsity** (Chen et al. Sec. 3, Table 2),
   trained in the same program as the IMP round: random pruning (a global
   random mask of the same per-run density on theta_0, fresh head) and
   random reinitialization (the IMP mask on a fresh random init). "MLM
   tickets" are IMP on the pre-training objective: the task ``mlm``.
3. **Transfer matrix** (Chen et al. Sec. 5, Fig. 4): each source mask (each
   task's ticket, the MLM ticket, a random mask) is trained on each target
   task from theta_0 (fresh head). A source mask is *matching* on target B
   when its mean test accuracy on B is at least B's dense fine-tuned mean
   minus one standard deviation over seeds (Chen et al. Sec. 3, Table 2 and
   Appendix A: the sparsities "for which IMP subnetwork performance is
   within one standard deviation of the unpruned BERT model"; their
   Appendix A also reports the stricter match-or-exceed criterion); it is *universal* at a sparsity when it is
   matching on every target (Chen et al. Sec. 5 use "universal" for masks
   that transfer matching to the other tasks).

Where we differ from the paper: the pooler is not pre-trained here (our
MLM-only pre-training has no NSP head), so it is treated like the task head
(trained value kept at rewinding) although it is pruned, as BERT-Tickets
prunes it. A source without a pooler (the MLM ticket) leaves a
classification target's pooler dense; a classification mask applied to the
MLM task drops its pooler entry. Accuracies are on the test split
(the paper reports GLUE dev sets).

Replicas: seeds (x arms, x sources) are one program per task and shape;
every stage is a resumable :func:`common.train_stage`; masks are recomputed
from the saved trained weights on resume (pure functions of them and fixed
keys), so a resumed run ends as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket import models as models_lib
from jaxticket import pruning
from jaxticket import tasks as tasks_lib
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import step as step_lib
from jaxticket.core.masks import path_str
from jaxticket.core.stats import stats
from jaxticket.data import default_data_dir
from jaxticket.data import text as text_lib
from jaxticket.data import text_datasets
from jaxticket.experiments import common
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.summaries import TransferSummary
from jaxticket.experiments.transfer import report, settings
from jaxticket.models import transformer

PyTree = Any
ARMS = ("imp", "random_pruning", "random_reinit")
RANDOM = "random"  # the random-mask source of the transfer matrix


# --- pure pieces (one replica, or stacked: they select leaves by path) -----
def rewind(trained: PyTree, start: PyTree, rewound: set[str]) -> PyTree:
  """BERT-tickets' rewind: the leaves named in ``rewound`` (the pre-trained
  tensors) take their value in ``start``; every other leaf (the task head)
  keeps its ``trained`` value."""
  flat = {path_str(p): v for p, v in
          jax.tree_util.tree_flatten_with_path(start)[0]}
  return jax.tree_util.tree_map_with_path(
      lambda p, v: flat[path_str(p)] if path_str(p) in rewound else v,
      trained)


def kept_target(total: int, level: int, fraction: float) -> int:
  """Prunable weights kept after ``level`` rounds that each remove
  ``fraction`` of the ``total`` original ones."""
  return total - int(round(level * fraction * total))


def prune_to(params: PyTree, mask: PyTree, keep: int, scorer: str,
             key: jax.Array) -> PyTree:
  """Global pruning of ``mask`` down to exactly ``keep`` kept weights,
  ranked by ``scorer`` (``magnitude`` or ``random``). One replica."""
  kept, _ = masks_lib.count(mask)
  kept = kept.astype(jnp.float32)
  fraction = (kept - keep) / jnp.maximum(kept, 1.0)
  return pruning.prune(params, mask, fraction, scorer=scorer,
                       strategy="global", key=key)


def carry_mask(source: PyTree, target_like: PyTree) -> PyTree:
  """``source``'s mask on a target with ``target_like``'s leaves: each
  prunable leaf present in both is copied bit for bit, a target leaf the
  source lacks (a pooler) stays dense; a source leaf the target lacks is
  dropped. Stacked or not."""
  flat = {path_str(p): v for p, v in jax.tree_util.tree_flatten_with_path(
      source, is_leaf=lambda x: x is None)[0] if v is not None}

  def take(path, m):
    if m is None:
      return None
    got = flat.get(path_str(path))
    return m if got is None else jnp.asarray(got, bool)
  return jax.tree_util.tree_map_with_path(take, target_like,
                                          is_leaf=lambda x: x is None)


def concat(trees: list[PyTree]) -> PyTree:
  return jax.tree.map(lambda *a: None if a[0] is None else jnp.concatenate(
      a), *trees, is_leaf=lambda x: x is None)


def part(tree: PyTree, i: int, n: int) -> PyTree:
  """Block ``i`` (of size ``n``) of the replica axis."""
  return jax.tree.map(lambda a: None if a is None else a[i * n:(i + 1) * n],
                      tree, is_leaf=lambda x: x is None)


# --- setup ------------------------------------------------------------------
def stage_config(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of ``cfg`` whose ``train`` section is the fine-tuning recipe
  (the form :func:`common.train_stage` reads)."""
  t = cfg.transfer
  c = copy.deepcopy(cfg)
  c.train.optimizer, c.train.lr = t.optimizer, float(t.lr)
  c.train.weight_decay, c.train.schedule = float(t.weight_decay), "cosine"
  c.train.warmup_steps, c.train.steps = int(t.warmup_steps), int(t.steps)
  c.train.batch_size, c.train.eval_every = int(t.batch_size), int(t.eval_every)
  c.data.augment = "off"
  return c


@dataclasses.dataclass
class TaskRun:
  """One task's data, its replicas' trainers (by replica count), theta_0
  (stacked over seeds), a fresh init and the rewound leaves."""
  name: str
  data: Any
  setups: common.Setup
  pretrained: PyTree
  fresh: PyTree
  rewound: set
  init: step_lib.TrainState


def corpus_of(cfg, meta: dict, task: str) -> tuple[str, str]:
  """(dataset name, text task) of ``task``."""
  if task == "mlm":
    return cfg.transfer.mlm_corpus or meta.get("corpus", "kjv"), "mlm"
  return task, "classification"


def folder_of(cfg, meta: dict, task: str) -> str:
  """The task's folder: ``transfer.dirs``', else the installed package's
  (one line naming the fix when it is missing)."""
  name, _ = corpus_of(cfg, meta, task)
  dirs = settings.task_dirs(cfg)
  return dirs.get(task) or text_lib.default_folder(
      name, cfg.data.data_dir or default_data_dir(), "transfer.dirs")


def load_task_data(cfg, meta: dict, task: str):
  name, kind = corpus_of(cfg, meta, task)
  t = cfg.transfer
  data = text_datasets.load_text(
      name, int(meta["max_len"]), kind, cfg.data.data_dir or None,
      folder_of(cfg, meta, task), cfg.data.val_fraction,
      tokenizer=init_checkpoint.tokenizer_of(cfg.init.checkpoint, meta),
      max_train=t.max_train,
      max_eval=t.max_eval, dir_key="transfer.dirs")
  if t.batch_size > len(data.train_x):
    raise config_lib.ConfigError(
        f"transfer.batch_size={t.batch_size} exceeds the "
        f"{len(data.train_x)} training examples of {task}; lower it.")
  return data


def build_setup(scfg, meta: dict, data, task: str, seeds: list[int]
                ) -> common.Setup:
  """Model (the checkpoint's encoder options), Program and Trainer of
  ``len(seeds)`` replicas."""
  output = "mlm" if task == "mlm" else "classify"
  model = models_lib.build(
      "transformer", data.num_classes, float(meta["dim"]) / 128.0,
      int(meta["layers"]), vocab_size=data.vocab_size, heads=meta["heads"],
      mlp_ratio=meta.get("mlp_ratio", 4), max_len=meta["max_len"],
      norm=meta.get("norm", "pre"), output=output)
  task_obj = (tasks_lib.get("mlm", vocab_size=data.vocab_size,
                            mask_id=data.tok.mask_id,
                            num_special=data.tok.num_special)
              if task == "mlm" else tasks_lib.get("classification"))
  return common.setup_of_model(scfg, data, model, task_obj,
                               transformer.PRUNABLE, seeds)


def load_pretrained(directory: str, stacked: PyTree, data
                    ) -> tuple[PyTree, set[str]]:
  """(``stacked`` params with the checkpoint in every replica, the loaded
  leaf paths). Errors (missing checkpoint, vocabulary or shape mismatch)
  are :func:`init_checkpoint.load_into`'s one-line ConfigErrors."""
  host = jax.device_get(stacked)
  one = jax.tree.map(lambda a: np.asarray(a[0]), host)
  loaded, names = init_checkpoint.load_into(directory, one, data.tokenizer,
                                            data.vocab_size)
  out = jax.tree.map(lambda h, v: np.broadcast_to(v, h.shape).copy(), host,
                     loaded)
  return jax.device_put(out), set(names)


def task_run(cfg, scfg, meta: dict, task: str, data, seeds: list[int],
             blocks: int) -> TaskRun:
  """The task's pieces; ONE Setup of ``blocks`` x seeds replicas serves
  every stage (fewer blocks are padded), so each task compiles once."""
  setup = build_setup(scfg, meta, data, task, seeds * blocks)
  full = setup.trainer.init(loop_lib.replica_keys(setup.seeds))
  init = jax.tree.map(lambda a: a[:len(seeds)], full)
  pre, rewound = load_pretrained(cfg.init.checkpoint, init.params, data)
  return TaskRun(task, data, setup, pre, init.params, rewound, init)


def start_state(run: TaskRun, params: list[PyTree], mask: list[PyTree]
                ) -> step_lib.TrainState:
  """A fresh state of the Setup's blocks x seeds replicas (the same data
  order for every block: paired): block i holds ``params[i]`` masked by
  ``mask[i]``; missing blocks repeat block 0 (padding, results unused)."""
  s = run.setups
  blocks = len(s.seeds) // int(jax.tree.leaves(params[0])[0].shape[0])
  params = params + [params[0]] * (blocks - len(params))
  mask = mask + [mask[0]] * (blocks - len(mask))
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  m = concat(mask)
  state = state.replace(params=loop_lib.vmapped(masks_lib.apply)(
      concat(params), m), mask=m)
  return s.trainer.restart(state)


# --- the run ------------------------------------------------------------------
def masks_at(run: TaskRun, trained: PyTree, mask: PyTree, level: int,
             cfg) -> tuple[PyTree, PyTree]:
  """(IMP mask, random mask) of round ``level``: magnitude pruning of the
  trained weights from the previous round's mask, and a global random mask
  of the same count from dense (fixed per-seed keys)."""
  _, total = masks_lib.count(loop_lib.tree_index(mask, 0))
  keep = kept_target(total, level, cfg.transfer.prune_fraction)
  seeds = run.setups.seeds[:len(jax.tree.leaves(trained)[0])]
  keys = loop_lib.replica_keys(seeds)
  imp_fn = lambda p, m, k: prune_to(p, m, keep, "magnitude", k)
  rnd_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1000 + level))(keys)
  rnd_fn = lambda p, m, k: prune_to(p, m, keep, "random", k)
  ones = run.init.mask
  return (loop_lib.vmapped(imp_fn)(trained, mask, keys),
          loop_lib.vmapped(rnd_fn)(run.pretrained, ones, rnd_keys))


def arm_stats(ev, block: int, n: int) -> dict:
  sl = slice(block * n, (block + 1) * n)
  return {"test_accuracy": stats(np.asarray(ev.test_accuracy)[sl]),
          "val_accuracy": stats(np.asarray(ev.val_accuracy)[sl])}


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> TransferSummary:
  """IMP per task with its baselines, then the transfer matrix per round."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  meta = init_checkpoint.read_meta(cfg.init.checkpoint)  # before claiming
  names = settings.task_list(cfg)
  datasets = {}
  for task in names:  # the texts exist and fit the vocabulary: before claiming
    datasets[task] = load_task_data(cfg, meta, task)
    init_checkpoint.check_vocabulary(cfg.init.checkpoint, meta,
                                     datasets[task].tokenizer,
                                     datasets[task].vocab_size)
  wd, done = common.open_run(cfg, workdir, "transfer", TransferSummary)
  if done is not None:
    return done
  t0 = time.time()
  scfg = stage_config(cfg)
  seeds = [cfg.seed + i for i in range(cfg.transfer.seeds)]
  n, k = len(seeds), len(names) + 1
  blocks = max(len(ARMS), k)
  runs = {t: task_run(cfg, scfg, meta, t, datasets[t], seeds, blocks)
          for t in names}
  rows, matrix, dense = [], [], {}
  trained = {t: None for t in names}
  masks = {t: None for t in names}
  rnd = {t: None for t in names}
  densities = []
  for level in range(cfg.transfer.rounds + 1):
    for t in names:
      r = runs[t]
      s = r.setups
      if level == 0:  # dense from theta_0, and from scratch (a fresh init)
        masks[t] = r.init.mask
        state = start_state(r, [r.pretrained, r.fresh], [masks[t]] * 2)
        out, row = common.train_stage(
            s, wd, f"{t}_dense", 0, state, state.mask, s.hparams, s.trainer,
            progress=progress, keep_state=True, extra={"task": t},
            desc=f"{t}: dense fine-tuning (pre-trained, scratch)")
        trained[t] = part(out.params, 0, n)
        dense[t] = arm_stats(row["evaluation"], 0, n)
        if t != "mlm":  # the floor a classifier must beat
          y = np.asarray(r.data.test_y)
          dense[t]["majority_test"] = float(np.bincount(y).max() / len(y))
        rows.append({"task": t, "level": 0, "arm": "dense",
                     "density": 1.0, **dense[t]})
        rows.append({"task": t, "level": 0, "arm": "scratch",
                     "density": 1.0, **arm_stats(row["evaluation"], 1, n)})
        continue
      masks[t], rnd[t] = masks_at(r, trained[t], masks[t], level, cfg)
      state = start_state(r, [rewind(trained[t], r.pretrained, r.rewound),
                              r.pretrained,
                              rewind(trained[t], r.fresh, r.rewound)],
                          [masks[t], rnd[t], masks[t]])
      mask = state.mask
      density = float(masks_lib.replica_densities(masks[t]).mean())
      out, row = common.train_stage(
          s, wd, f"{t}_round{level}", level, state, mask, s.hparams,
          s.trainer, progress=progress, keep_state=True,
          extra={"task": t}, desc=f"{t}: round {level} "
          f"(density {density:.2f}), IMP + baselines")
      trained[t] = part(out.params, 0, n)
      for i, arm in enumerate(ARMS):
        rows.append({"task": t, "level": level, "arm": arm,
                     "density": density,
                     **arm_stats(row["evaluation"], i, n)})
    if level == 0:
      continue
    densities.append(float(masks_lib.replica_densities(
        masks[names[0]]).mean()))
    for target in names:
      r = runs[target]
      s = r.setups
      like = r.init.mask
      sources = [carry_mask(masks[src], like) for src in names]
      sources.append(carry_mask(rnd[target], like))
      state = start_state(r, [r.pretrained] * k, sources)
      mask = state.mask
      _, row = common.train_stage(
          s, wd, f"transfer_{target}_round{level}", level, state, mask,
          s.hparams, s.trainer, progress=progress,
          extra={"target": target},
          desc=f"round {level}: every mask on {target}")
      ev = row["evaluation"]
      for i, src in enumerate(names + [RANDOM]):
        d = float(masks_lib.replica_densities(part(mask, i, n)).mean())
        st = arm_stats(ev, i, n)
        matrix.append({"level": level, "source": src, "target": target,
                       "density": d, **st,
                       "matching": matching(st, dense[target])})
  universal = universality(matrix, names)
  summary = TransferSummary(
      checkpoint=cfg.init.checkpoint, tasks=names, seeds=seeds,
      prune_fraction=float(cfg.transfer.prune_fraction),
      rounds=int(cfg.transfer.rounds), densities=densities, dense=dense,
      rows=rows, matrix=matrix, universal=universal,
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(TransferSummary)


def matching(entry: dict, dense: dict) -> bool:
  """Chen et al. Table 2 / Appendix A: within one standard deviation (over
  seeds) of the dense fine-tuned network's mean test accuracy on the task."""
  e, d = entry["test_accuracy"], dense["test_accuracy"]
  return bool(e["mean"] >= d["mean"] - d["std"])


def universality(matrix: list[dict], names: list[str]) -> list[dict]:
  """Per round and source: the targets it is matching on, and whether that
  is every target (universal)."""
  out = []
  for level in sorted({m["level"] for m in matrix}):
    for src in names + [RANDOM]:
      cells = [m for m in matrix if m["level"] == level and m["source"] == src]
      good = [m["target"] for m in cells if m["matching"]]
      out.append({"level": level, "source": src, "matching_on": good,
                  "universal": len(good) == len(cells)})
  return out


def command(cfg: ml_collections.ConfigDict, args: Any) -> TransferSummary:
  """``jaxticket transfer``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: TransferSummary) -> str:
  return report.console_text(summary)


__all__ = ["run", "command", "console", "rewind", "prune_to", "kept_target",
           "carry_mask", "matching", "universality", "stage_config"]
