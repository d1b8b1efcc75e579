"""Tokenized text datasets in memory (issue 17): the arrays a
:class:`~jaxticket.core.loop.Trainer` reads, from the offline builders of
:mod:`jaxticket.data.text_builders`.

Two uses of one corpus:

- ``task="classification"``: one example per text ([CLS] tokens [SEP],
  padded/truncated to ``seq_len``), label from the builder (sentiment,
  fortune category, Austen novel, testament).
- ``task="mlm"``: the split's texts joined by newlines and cut into
  consecutive ``seq_len`` windows (the pre-training examples; targets are
  placeholders: the MLM task draws its own from the tokens, in the step).

Validation is carved from the training split with a fixed seed, as for the
image datasets.

The tokenizer is a name (``bytes``; ``bpe``: merges learned here on the
builder's training split, validation windows included, the test split
never) or a tokenizer object (a checkpoint's, so that every command after
pre-training tokenizes exactly as it did); the one used is the dataset's
``tok``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxticket.core.checks import ConfigError, check_choice
from jaxticket.data import text as text_lib
from jaxticket.data import text_builders
from jaxticket.data.paths import default_data_dir
from jaxticket.data import tokenizer as tokenizer_lib

TEXT_DATASETS = tuple(text_builders.TEXT_BUILDERS)
TEXT_TASKS = ("classification", "mlm")


@dataclasses.dataclass(frozen=True)
class TextDataset:
  """Token ids (N, seq_len) int32 and labels; ``normalize`` keeps ids."""
  name: str
  train_x: np.ndarray
  train_y: np.ndarray
  val_x: np.ndarray
  val_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  vocab_size: int
  tokenizer: str
  task: str = "classification"
  augment: bool = False
  tok: Any = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train_x.shape[1:])

  def normalize(self, x):
    """Token ids stay ids (int32); works on NumPy and JAX arrays."""
    return x.astype(np.int32)


def _tokenize(tok, texts: list[str], labels: np.ndarray, task: str,
              seq_len: int) -> tuple[np.ndarray, np.ndarray]:
  if task == "mlm":
    x = tok.chunks("\n".join(texts), seq_len)
    return x, np.zeros(len(x), np.int32)
  x = np.stack([tok.encode_fixed(t, seq_len) for t in texts]) if texts else (
      np.zeros((0, seq_len), np.int32))
  return x, labels.astype(np.int32)


def load_text(name: str, seq_len: int = 128, task: str = "classification",
              data_dir: str | None = None, local_dir: str | None = None,
              val_fraction: float = 0.1, val_seed: int = 0,
              tokenizer: Any = "bytes", max_train: int = 0,
              max_eval: int = 0, dir_key: str = "data.dir",
              bpe_merges: int = 0,
              tokenizer_key: str = "pretrain.tokenizer") -> TextDataset:
  """Load text dataset ``name`` tokenized for ``task``.

  Args:
    name: one of :data:`TEXT_DATASETS`.
    seq_len: tokens per example, [CLS] and [SEP] included.
    task: ``classification`` or ``mlm``.
    data_dir: tfds data dir (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); prepared copies and the exported Bible go
      there.
    local_dir: a folder of the source's files (``data.dir``); "" / None =
      the installed package's.
    val_fraction: of the training examples, held out for validation.
    max_train: keep at most this many training examples (0 = all), for
      :tiny runs.
    max_eval: keep at most this many validation and test examples each
      (0 = all; the first of a fixed permutation), so that frequent
      evaluations of a pre-training run stay cheap.
    dir_key: the config key of ``local_dir``, for error messages.
    tokenizer: ``bytes``, ``bpe`` (trained here with ``bpe_merges``) or a
      tokenizer object (:mod:`jaxticket.data.tokenizer`).
    tokenizer_key: the config key of ``tokenizer``, for error messages.
  """
  check_choice("data.name", name, TEXT_DATASETS, "text dataset")
  check_choice("task", task, TEXT_TASKS, "text task")
  if seq_len < 4:
    raise ConfigError(f"text.seq_len must be >= 4; got {seq_len}.")
  if isinstance(tokenizer, str) and tokenizer != "bpe":
    tokenizer_lib.get(tokenizer, key=tokenizer_key)  # a bad name: one line
  data_dir = data_dir or default_data_dir()
  folder = local_dir or text_lib.default_folder(name, data_dir, dir_key)
  try:
    builder = text_builders.prepared(name, folder, data_dir)
  except (OSError, ValueError) as e:
    raise ConfigError(f"{dir_key}={folder!r} cannot be read as {name!r}: "
                      f"{(str(e).splitlines() or [''])[0][:200]}") from None
  texts, labels = text_builders.read_split(builder, "train")
  test_texts, test_labels = text_builders.read_split(builder, "test")
  num_classes = builder.info.features["label"].num_classes
  tok = tokenizer
  if isinstance(tokenizer, str):
    tok = tokenizer_lib.get(tokenizer, "\n".join(texts), bpe_merges,
                            key=tokenizer_key)
  x, y = _tokenize(tok, texts, labels, task, seq_len)
  test_x, test_y = _tokenize(tok, test_texts, test_labels, task, seq_len)
  order = np.random.default_rng(val_seed).permutation(len(x))
  n_val = max(1, int(round(val_fraction * len(x))))
  val_idx, train_idx = order[:n_val], np.sort(order[n_val:])
  if max_train:
    train_idx = train_idx[:max_train]
  if max_eval:
    val_idx = val_idx[:max_eval]
    keep = np.random.default_rng(val_seed + 1).permutation(len(test_x))
    test_x, test_y = test_x[np.sort(keep[:max_eval])], test_y[np.sort(
        keep[:max_eval])]
  if not len(train_idx):
    raise ConfigError(f"data.name={name!r}: no training examples left in "
                      f"{folder!r}.")
  return TextDataset(
      name=name, train_x=x[train_idx], train_y=y[train_idx], val_x=x[val_idx],
      val_y=y[val_idx], test_x=test_x, test_y=test_y,
      num_classes=tok.vocab_size if task == "mlm" else int(num_classes),
      vocab_size=tok.vocab_size, tokenizer=tok.name, task=task, tok=tok)


__all__ = ["TextDataset", "TEXT_DATASETS", "TEXT_TASKS", "load_text"]
