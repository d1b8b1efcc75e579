"""The ``benchmark`` config section: methods x datasets at fixed densities
and seeds, one recipe per dataset (Dehghani et al. 2021's benchmark
lottery, applied to lottery tickets)."""

from __future__ import annotations

import ml_collections

from jaxticket.core import optim
from jaxticket.core.checks import (ConfigError, check_choice, check_choices,
                                   check_range)

#: Offline image classification datasets a cell can train on.
IMAGE_DATASETS = ("mnist1d", "digits", "fashion_mnist")
#: Offline graph node-classification sets (jaxticket.data.GRAPH_DATASETS):
#: their cells train ``benchmark.graph_model`` full batch.
GRAPH_DATASETS = ("karate", "sbm_homophilous", "sbm_heterophilous",
                  "drosophila_left", "drosophila_right")
#: Offline text classification sets (jaxticket.data.TEXT_DATASETS): byte
#: tokens, their cells train ``benchmark.text_model`` from scratch.
TEXT_DATASETS = ("rotten_tomatoes", "fortunes", "austen", "kjv")
DATASETS = IMAGE_DATASETS + GRAPH_DATASETS + TEXT_DATASETS
#: Models a graph dataset's cells can train (jaxticket.models.GRAPH_MODELS).
GRAPH_MODELS = ("gcn", "sage")
#: Methods that cannot score a graph set's model: SynFlow's all-ones input
#: has no meaning for node indices.
NOT_ON_GRAPHS = ("synflow",)
#: Models a text dataset's cells can train (jaxticket.models.TEXT_MODELS).
TEXT_MODELS = ("transformer",)
#: Methods that cannot score a text set's model: SynFlow's all-ones input
#: is token 1 everywhere, and its conservation argument needs homogeneous
#: layers (LayerNorm, softmax attention are not).
NOT_ON_TEXT = ("synflow",)
#: Methods the ``imp`` experiment provides (the rest come from ``pai``).
IMP_METHODS = ("imp",)
#: ``dst`` methods that are no benchmark cell: ``ticket`` is the ``imp``
#: cell, ``finetune`` needs its own IMP run and LR schedule.
DST_EXCLUDED = ("ticket", "finetune")


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # "imp" = the IMP ticket (rewind to init); any name of `jaxticket pai`'s
  # registry (random, magnitude, snip, grasp, synflow, smart_ratio, ...)
  # = that pruning-at-initialization method's mask; any name of `jaxticket
  # dst`'s (set, rigl, gmp, granet, static_erk, ...; not ticket/finetune)
  # = that sparse-training method, all of them one dst sub-run.
  c.methods = ("imp", "random", "snip", "grasp", "synflow", "set", "rigl")
  c.datasets = IMAGE_DATASETS
  # The model of a graph dataset's cells (model.name is the image
  # datasets'): a GCN (Kipf & Welling 2017) on the graph's node features,
  # its kernels pruned, its edges never; trained full batch (every training
  # node each step, as GCN and UGS train).
  c.graph_model = "gcn"
  # The model of a text dataset's cells: the BERT-style encoder
  # (models/transformer.py, pre-LN, model.width/model.depth as given),
  # trained FROM SCRATCH on the byte tokens of data.text.seq_len; every
  # Dense kernel pruned (attention, MLP, pooler, head), never embeddings,
  # LayerNorms or biases.
  c.text_model = "transformer"
  # "name=folder,..." for text sets whose source files are not installed
  # (each folder in its source's layout, jaxticket.data.text); "" = the
  # installed packages'.
  c.text_dirs = ""
  # Fixed densities for every method: (1 - prune_fraction)^L for each IMP
  # level L here (the IMP cell prunes prune_fraction of the remaining
  # weights per level, globally, output layer included).
  c.levels = (1, 2, 3)
  c.prune_fraction = 0.5
  # Dense-recipe grid: per dataset the train.lr with the best mean
  # *validation* accuracy of the dense net (one vmapped sweep program).
  c.lrs = (0.03, 0.1, 0.3)
  # The text sets' recipe: the transformer with SGD stays at the majority
  # class in short runs (measured on kjv: 300 steps at lr 0.1), so text
  # cells train with their own optimizer (Adam-family, as BERT is trained)
  # and pick their LR from their own grid, on validation like the rest.
  c.text_optimizer = "adamw"
  c.text_lrs = (3e-4, 1e-3, 3e-3)
  c.bootstrap = 1000  # bootstrap draws over seeds for the rank CIs
  c.ci = 0.95
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """``:tiny``: IMP, two PaI methods and RigL, two datasets, one level,
  two LRs."""
  c = cfg.benchmark
  c.methods = ("imp", "random", "snip", "rigl")
  c.datasets = ("mnist1d", "digits")
  c.levels = (1,)
  c.lrs = (0.1, 0.3)
  c.text_lrs = (1e-3, 3e-3)
  c.bootstrap = 200


def text_dirs(cfg: ml_collections.ConfigDict) -> dict[str, str]:
  """``benchmark.text_dirs`` as {dataset: folder} (one line naming a bad
  entry)."""
  out = {}
  for item in [i for i in cfg.benchmark.text_dirs.split(",") if i.strip()]:
    if "=" not in item:
      raise ConfigError(f"benchmark.text_dirs entry {item!r} is not "
                        "dataset=folder; write e.g. kjv=/data/kjv.")
    name, folder = (p.strip() for p in item.split("=", 1))
    check_choices("benchmark.text_dirs", (name,), TEXT_DATASETS,
                  "text dataset")
    if not folder:
      raise ConfigError(f"benchmark.text_dirs entry {item!r} has no folder; "
                        "write e.g. kjv=/data/kjv.")
    out[name] = folder
  return out


def densities(cfg: ml_collections.ConfigDict) -> list[float]:
  """The fixed densities of the benchmark (fraction of weights KEPT)."""
  b = cfg.benchmark
  return [float(round((1 - b.prune_fraction) ** l, 10)) for l in b.levels]


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Check ``cfg.benchmark`` (PaI method names: ``benchmark.validate``,
  which asks the pai experiment's registry)."""
  b = cfg.benchmark
  if not b.methods:
    raise ConfigError("benchmark.methods is empty: name at least two "
                      "methods, e.g. --config.benchmark.methods=imp,snip.")
  if len(set(b.methods)) != len(b.methods):
    raise ConfigError(f"benchmark.methods={tuple(b.methods)!r} repeats a "
                      "method.")
  check_choices("benchmark.datasets", b.datasets, DATASETS, "dataset")
  check_choices("benchmark.graph_model", (b.graph_model,), GRAPH_MODELS,
                "graph model")
  if any(d in GRAPH_DATASETS for d in b.datasets):
    for m in b.methods:
      if m in NOT_ON_GRAPHS:
        raise ConfigError(
            f"benchmark.methods: {m!r} cannot score the graph dataset(s) "
            f"{[d for d in b.datasets if d in GRAPH_DATASETS]} (its all-ones "
            "input has no meaning for node indices): drop it, or the graph "
            "datasets.")
  check_choices("benchmark.text_model", (b.text_model,), TEXT_MODELS,
                "text model")
  dirs = text_dirs(cfg)
  texts = [d for d in b.datasets if d in TEXT_DATASETS]
  for name in dirs:
    if name not in texts:
      raise ConfigError(
          f"benchmark.text_dirs names {name!r}, which is no text set of "
          f"benchmark.datasets ({', '.join(texts) or 'none'}): drop it or "
          "add the dataset.")
  if texts:
    for m in b.methods:
      if m in NOT_ON_TEXT:
        raise ConfigError(
            f"benchmark.methods: {m!r} cannot score the text dataset(s) "
            f"{texts} (its all-ones input is one token repeated, and its "
            "conservation needs homogeneous layers, which LayerNorm and "
            "attention are not): drop it, or the text datasets.")
  if not b.levels:
    raise ConfigError("benchmark.levels is empty: give IMP levels >= 1, "
                      "e.g. --config.benchmark.levels=1,2,3.")
  for l in b.levels:
    check_range("benchmark.levels", isinstance(l, int) and l >= 1, l,
                "every level must be an integer >= 1 (density "
                "(1 - prune_fraction)^level)")
  if len(set(b.levels)) != len(b.levels):
    raise ConfigError(f"benchmark.levels={tuple(b.levels)!r} repeats a "
                      "level.")
  check_range("benchmark.prune_fraction", 0 < b.prune_fraction < 1,
              b.prune_fraction, "must be in (0, 1): the fraction of the "
              "remaining weights pruned per IMP level")
  for key, example in (("lrs", "0.03,0.1,0.3"), ("text_lrs", "3e-4,1e-3")):
    if not b[key]:
      raise ConfigError(f"benchmark.{key} is empty: give the dense-recipe "
                        f"LR grid, e.g. --config.benchmark.{key}={example}.")
    for lr in b[key]:
      check_range(f"benchmark.{key}", isinstance(lr, (int, float)) and
                  lr > 0, lr, "every learning rate must be > 0")
  check_choice("benchmark.text_optimizer", b.text_optimizer,
               optim.OPTIMIZERS, "optimizer")
  check_range("benchmark.bootstrap", b.bootstrap >= 1, b.bootstrap,
              "must be >= 1 (bootstrap draws over seeds)")
  check_range("benchmark.ci", 0 < b.ci < 1, b.ci, "must be in (0, 1)")
