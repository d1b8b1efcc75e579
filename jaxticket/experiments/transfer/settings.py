"""The ``transfer`` config section: BERT-tickets IMP from a pre-trained
checkpoint on each task, its baselines, and the mask-transfer matrix
(Chen et al. 2020; issue 17, items 4 and 5).

The recipe keys live here (as in ``pretrain``): fine-tuning needs its own
Adam-family, warm-up recipe. The encoder's options are not keys: they are
the checkpoint's (``pretrained.json``), so a mismatch cannot happen.
"""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.core.optim import OPTIMIZERS

#: Labelled text corpora (data.text_datasets; settings import no data) and
#: ``mlm``: the pre-training objective on the checkpoint's own corpus.
CLASSIFICATION_TASKS = ("rotten_tomatoes", "fortunes", "austen")
TASKS = CLASSIFICATION_TASKS + ("mlm",)


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # --- tasks: IMP runs on each; each ticket is trained on each ------------
  # comma-separated, from TASKS (each task adds one compiled program and
  # 2 x rounds + 1 stages; fortunes, austen: add them when time allows)
  c.tasks = "rotten_tomatoes,mlm"
  c.dirs = ""  # "task=folder,..." for tasks whose files are not installed
  c.mlm_corpus = ""  # the MLM task's corpus; "" = the checkpoint's
  c.max_train = 2000  # training examples kept per task (0 = all)
  c.max_eval = 256  # validation/test examples evaluated per task (0 = all)
  # --- BERT-tickets IMP ------------------------------------------------------
  c.rounds = 4  # pruning rounds after the dense fine-tuning (density 0.6)
  c.prune_fraction = 0.1  # of the ORIGINAL prunable weights, per round
  c.seeds = 2
  # --- the fine-tuning recipe (every stage: IMP, baselines, transfer) -------
  c.optimizer = "adamw"
  c.lr = 5e-4
  c.weight_decay = 0.01
  c.warmup_steps = 10
  c.steps = 100  # per stage (a round's IMP + baselines, a matrix row)
  c.batch_size = 32
  c.eval_every = 100
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """:tiny sizes: two tasks, two rounds, a few steps."""
  t = cfg.transfer
  t.tasks, t.max_train, t.max_eval = "rotten_tomatoes,mlm", 128, 64
  t.rounds, t.prune_fraction = 2, 0.2
  t.steps, t.eval_every, t.warmup_steps, t.batch_size = 8, 4, 1, 16


def task_list(cfg: ml_collections.ConfigDict) -> list[str]:
  return [n.strip() for n in cfg.transfer.tasks.split(",") if n.strip()]


def task_dirs(cfg: ml_collections.ConfigDict) -> dict[str, str]:
  """``transfer.dirs`` as {task: folder} (one line naming a bad entry)."""
  out = {}
  for item in [i for i in cfg.transfer.dirs.split(",") if i.strip()]:
    if "=" not in item:
      raise ConfigError(f"transfer.dirs entry {item!r} is not task=folder; "
                        "write e.g. rotten_tomatoes=/data/rt.")
    name, folder = item.split("=", 1)
    check_choice("transfer.dirs", name.strip(), TASKS, "task")
    out[name.strip()] = folder.strip()
  return out


def validate(cfg: ml_collections.ConfigDict) -> None:
  t = cfg.transfer
  names = task_list(cfg)
  if not names:
    raise ConfigError("transfer.tasks is empty; name at least one of "
                      f"{', '.join(TASKS)}.")
  for name in names:
    check_choice("transfer.tasks", name, TASKS, "task")
  if len(set(names)) != len(names):
    raise ConfigError(f"transfer.tasks={t.tasks!r} names a task twice.")
  task_dirs(cfg)
  if not cfg.init.checkpoint:
    raise ConfigError("transfer needs --config.init.checkpoint=DIR, the "
                      "workdir of a finished `jaxticket pretrain` run.")
  check_choice("transfer.optimizer", t.optimizer, OPTIMIZERS, "optimizer")
  for key in ("rounds", "seeds", "steps", "batch_size", "eval_every"):
    check_range(f"transfer.{key}", t[key] >= 1, t[key], "must be >= 1")
  for key in ("max_train", "max_eval", "warmup_steps"):
    check_range(f"transfer.{key}", t[key] >= 0, t[key], "must be >= 0")
  check_range("transfer.lr", t.lr > 0, t.lr, "must be > 0")
  check_range("transfer.prune_fraction", 0 < t.prune_fraction < 1,
              t.prune_fraction, "must be in (0, 1)")
  if t.rounds * t.prune_fraction >= 1:
    raise ConfigError(
        f"transfer.rounds={t.rounds} x transfer.prune_fraction="
        f"{t.prune_fraction} prunes every weight (fractions are of the "
        "original weights); lower one of them.")
  if t.warmup_steps >= t.steps:
    raise ConfigError(f"transfer.warmup_steps={t.warmup_steps} must be "
                      f"below transfer.steps={t.steps}.")
