"""The ``continual`` config section: a task sequence from one offline
dataset and neuron-wise task gates over one shared MLP (HAT / DSN), with
fine-tuning and random unit masks as baselines (issue 18, item 2)."""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import (ConfigError, check_choice, check_choices,
                                   check_range)

#: How the task sequence is built from the dataset.
SEQUENCES = {
    "permuted": "every task permutes the input positions (task 0: none); "
                "all classes in every task",
    "rotated": "MNIST-1D 'rotation': task t shifts every signal cyclically "
               "by t * length / tasks positions (task 0: none); all classes",
    "split": "the classes split into continual.tasks disjoint groups, "
             "labels renumbered within each task",
}
#: The methods, each one compiled program per stage (seeds on its axis).
METHODS = {
    "gated": "learned annealed sigmoid unit gates per task; weights "
             "earlier tasks' units use get no gradient (HAT/DSN)",
    "dsn": "gated, plus DSN's data-free replay after every later task: "
           "earlier tasks by mask similarity take up other tasks' units "
           "fitted on impressions (only their gates there and head block "
           "change), kept if their validation accuracy rises",
    "fixed": "random unit masks per task with the gated method's unit "
             "counts (continual.random_density without it), same protection",
    "finetune": "one net fine-tuned through the sequence (no gates, no "
                "protection: forgets)",
    "separate": "a fresh dense net per task (no sharing, T times the "
                "weights)",
    "separate_imp": "a separate IMP ticket per task: a fresh net, "
                    "continual.imp_levels rounds of train / prune "
                    "continual.imp_fraction of the remaining weights per "
                    "layer by magnitude / rewind to its init, then trained",
}

#: Which new units DSN's replay may open for an earlier task.
REPLAY_UNITS = {
    "all": "task k's new units in every gated layer (the reference code)",
    "last": "only the last hidden layer's (an ablation: lower layers' new "
            "units change what task k's units compute)",
}


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.sequence = "permuted"
  c.tasks = 5
  c.methods = tuple(METHODS)
  c.widths = (100, 100)  # hidden units of the shared MLP
  c.smax = 400.0  # HAT/DSN's s_max
  # HAT's lambda: weight of the gates' sparsity regularizer (Eq. 5) on
  # units no earlier task uses; 0 = none (gates as large as training
  # leaves them).
  c.lamb = 0.75
  c.random_density = 0.5  # fixed: fraction of units per task w/o gated
  # separate_imp: IMP rounds per task and the fraction pruned per round
  # (3 rounds of 20%: 51.2% of every kernel kept, head included).
  c.imp_levels = 3
  c.imp_fraction = 0.2
  c.permutation_seed = 1234  # the permuted tasks' input permutations
  # DSN's data-free replay (method dsn; replay.py, following the reference
  # code's generation_transfer). Paper/code: buffer 1000, 1500 Adam steps
  # at lr 0.01 for the impressions, tau 20; replay SGD lr 0.05, batch 64,
  # 10 epochs of the buffer (~160 steps), lr / 3 half way.
  c.replay_buffer = 1000  # impressions per replayed task
  c.replay_synth_steps = 300  # Adam steps optimizing them (code: 1500)
  c.replay_synth_lr = 0.01
  c.replay_tau = 20.0  # softmax temperature of the impressions
  c.replay_beta = 1.0  # Dirichlet concentration scale (Nayak et al.)
  c.replay_steps = 160  # SGD steps (batch 64) fitting the pre-replay logits
  c.replay_lr = 0.05
  # global gradient-norm clip of the replay SGD (replay.py, point 4; not
  # the code): the logit MSE on impressions otherwise diverges at lr 0.05
  # on 784-dim inputs (split Fashion-MNIST); 0 = no clip (the code).
  c.replay_clip = 1.0
  # which of task k's new units (used by other tasks, not by k) the replay
  # may open: "all" gated layers (the code) or only the "last" one.
  c.replay_units = "all"
  return c


def validate(cfg: ml_collections.ConfigDict) -> None:
  c = cfg.continual
  check_choice("continual.sequence", c.sequence, SEQUENCES, "task sequence")
  check_choices("continual.methods", c.methods, METHODS, "continual method")
  check_choice("continual.replay_units", c.replay_units, REPLAY_UNITS,
               "replay unit set")
  check_range("continual.tasks", c.tasks >= 2, c.tasks,
              "must be >= 2 (a sequence)")
  check_range("continual.widths", len(c.widths) >= 1 and all(
      int(w) >= 1 for w in c.widths), tuple(c.widths),
              "one or more hidden widths >= 1")
  check_range("continual.smax", c.smax >= 1, c.smax, "must be >= 1")
  check_range("continual.lamb", c.lamb >= 0, c.lamb, "must be >= 0")
  check_range("continual.random_density", 0 < c.random_density <= 1,
              c.random_density, "must be in (0, 1]")
  check_range("continual.imp_levels", int(c.imp_levels) >= 1,
              c.imp_levels, "must be >= 1")
  check_range("continual.imp_fraction", 0 < c.imp_fraction < 1,
              c.imp_fraction, "must be in (0, 1)")
  for k in ("replay_buffer", "replay_synth_steps", "replay_steps"):
    check_range(f"continual.{k}", int(c[k]) >= 1, c[k], "must be >= 1")
  check_range("continual.replay_clip", c.replay_clip >= 0, c.replay_clip,
              "must be >= 0 (0 = no clip)")
  for k in ("replay_synth_lr", "replay_tau", "replay_beta", "replay_lr"):
    check_range(f"continual.{k}", c[k] > 0, c[k], "must be > 0")
  if cfg.train.weight_decay != 0:
    raise ConfigError(
        f"train.weight_decay={cfg.train.weight_decay}: weight decay moves "
        "the weights earlier tasks use, which breaks the zero-forgetting "
        "protection; use --config.train.weight_decay=0 (as HAT/DSN do) or "
        "--config configs/continual_mnist1d.py.")


def check_split(tasks: int, classes: int) -> None:
  """A split sequence needs at least two classes per task."""
  if classes // tasks < 2:
    raise ConfigError(
        f"continual.tasks={tasks}: a split of {classes} classes into "
        f"{tasks} tasks leaves < 2 classes per task; use at most "
        f"{classes // 2} tasks.")
