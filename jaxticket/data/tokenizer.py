"""A byte-level tokenizer: needs no download and no training.

Token ids: 0 [PAD], 1 [CLS], 2 [SEP], 3 [MASK], then the 256 UTF-8 byte
values at 4..259 (vocabulary 260).

Why bytes (and not a trained WordPiece/BPE): it round-trips *every* text
exactly (no unknown token, no normalization), is identical on every machine
(no vocabulary file to ship, version or mismatch between pre-training and
fine-tuning), and its embedding is tiny (260 x dim), which matters for a
model pre-trained on 2 CPU cores. The cost is ~4-5x longer sequences than a
word-piece vocabulary on English text, so a fixed ``max_len`` sees fewer
words. A trained sub-word vocabulary (compared by measured MLM accuracy and
speed) is an open item of issue 17; the tokenizer is one object with a
``vocab_size``, so a second one plugs in beside it.

Also here: :class:`BPETokenizer` (byte-level BPE trained on a corpus,
``pretrain.tokenizer=bpe``; measured on the KJV test split: 3.35
bytes/token with 1000 merges, 4.35 with 4000, vs 1.0 for bytes) and
:class:`WordPieceTokenizer` (BERT's ``vocab.txt``, for imported Hugging
Face checkpoints, :mod:`jaxticket.experiments.hf_import`). Every tokenizer
has the same surface: ``vocab_size``, ``pad_id cls_id sep_id mask_id``,
``num_special`` (ids below it are never MLM targets), ``encode``,
``decode``, ``encode_fixed`` and ``chunks``; :func:`dumps` / :func:`loads`
write and read the trained ones (what a checkpoint stores next to its
weights).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import re
import unicodedata

import numpy as np

PAD, CLS, SEP, MASK = 0, 1, 2, 3
NUM_SPECIAL = 4


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
  """UTF-8 bytes shifted by the special tokens; see the module docstring."""
  name: str = "bytes"
  vocab_size: int = 256 + NUM_SPECIAL
  pad_id: int = PAD
  cls_id: int = CLS
  sep_id: int = SEP
  mask_id: int = MASK
  num_special: int = NUM_SPECIAL

  def encode(self, text: str) -> np.ndarray:
    """int32 ids of ``text`` (no special tokens)."""
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(
        np.int32) + NUM_SPECIAL

  def decode(self, ids) -> str:
    """The text of ``ids``; special tokens are dropped."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    ids = ids[ids >= NUM_SPECIAL] - NUM_SPECIAL
    return bytes(ids.astype(np.uint8)).decode("utf-8", errors="replace")

  def encode_fixed(self, text: str, length: int) -> np.ndarray:
    """[CLS] ids... [SEP] padded with [PAD] (or truncated) to ``length``."""
    body = self.encode(text)[:max(0, length - 2)]
    out = np.full(length, self.pad_id, np.int32)
    out[0] = self.cls_id
    out[1:1 + len(body)] = body
    out[min(1 + len(body), length - 1)] = self.sep_id
    return out

  def chunks(self, text: str, length: int) -> np.ndarray:
    """``text`` cut into consecutive windows of ``length - 2`` tokens, each
    as [CLS] window [SEP] (the last one padded): (N, length) int32, the
    pre-training examples of a corpus."""
    ids = self.encode(text)
    body = length - 2
    n = max(1, -(-len(ids) // body))
    out = np.full((n, length), self.pad_id, np.int32)
    out[:, 0] = self.cls_id
    for i in range(n):
      piece = ids[i * body:(i + 1) * body]
      out[i, 1:1 + len(piece)] = piece
      out[i, 1 + len(piece)] = self.sep_id
    return out


def _is_punct(ch: str) -> bool:
  cp = ord(ch)
  if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
    return True
  return unicodedata.category(ch).startswith("P")


def basic_split(text: str, lower: bool = True) -> list[str]:
  """BERT's BasicTokenizer (Devlin et al. 2019, Sec. A.2; transformers'
  ``BasicTokenizer``): drop control characters, lower-case and strip
  accents (uncased models), split on whitespace and around punctuation.
  (Chinese-character splitting is not done.)"""
  text = "".join(" " if ch.isspace() else ch for ch in text
                 if ch.isspace() or not unicodedata.category(ch).startswith(
                     "C"))
  if lower:
    text = "".join(ch for ch in unicodedata.normalize("NFD", text.lower())
                   if unicodedata.category(ch) != "Mn")
  words = []
  for word in text.split():
    start = 0
    for i, ch in enumerate(word):
      if _is_punct(ch):
        words += [w for w in (word[start:i], ch) if w]
        start = i + 1
    if word[start:]:
      words.append(word[start:])
  return words


@dataclasses.dataclass(frozen=True)
class WordPieceTokenizer:
  """BERT's WordPiece over a ``vocab.txt`` (one token a line, id = line
  number), e.g. a Hugging Face checkpoint's: basic split, then greedy
  longest-match-first sub-words with ``##`` continuations; a word with no
  match (or over 100 characters) is ``[UNK]``. Special ids come from the
  vocabulary ([PAD] must be id 0: the encoder's padding, as in BERT)."""
  vocab: tuple[str, ...]
  lower: bool = True
  name: str = "wordpiece"

  @classmethod
  def from_file(cls, path: str, lower: bool = True) -> "WordPieceTokenizer":
    with open(path, encoding="utf-8") as f:
      return cls(tuple(line.rstrip("\n") for line in f), lower)

  @functools.cached_property
  def ids(self) -> dict[str, int]:
    return {t: i for i, t in enumerate(self.vocab)}

  def _id(self, token: str) -> int:
    if token not in self.ids:
      raise ValueError(f"vocab.txt has no {token} token.")
    return self.ids[token]

  @property
  def vocab_size(self) -> int:
    return len(self.vocab)

  @property
  def pad_id(self) -> int:
    return self._id("[PAD]")

  @property
  def cls_id(self) -> int:
    return self._id("[CLS]")

  @property
  def sep_id(self) -> int:
    return self._id("[SEP]")

  @property
  def mask_id(self) -> int:
    return self._id("[MASK]")

  @property
  def unk_id(self) -> int:
    return self._id("[UNK]")

  @property
  def num_special(self) -> int:
    """1 + the largest special id: the MLM task never selects ids below it
    (BERT's vocab.txt: [PAD] 0, [unused*], [UNK] 100 ... [MASK] 103, so
    104; random replacements are drawn from the ids above)."""
    return 1 + max(self.pad_id, self.unk_id, self.cls_id, self.sep_id,
                   self.mask_id)

  def _pieces(self, word: str) -> list[int]:
    if len(word) > 100:
      return [self.unk_id]
    out, start = [], 0
    while start < len(word):
      end = len(word)
      while end > start:
        piece = word[start:end] if start == 0 else "##" + word[start:end]
        if piece in self.ids:
          out.append(self.ids[piece])
          break
        end -= 1
      else:
        return [self.unk_id]
      start = end
    return out

  def encode(self, text: str) -> np.ndarray:
    """int32 ids of ``text`` (no special tokens)."""
    ids = [i for w in basic_split(text, self.lower) for i in self._pieces(w)]
    return np.asarray(ids, np.int32)

  def decode(self, ids) -> str:
    """Tokens joined by spaces, ``##`` pieces glued (special tokens but
    [UNK] dropped): the normalized text for in-vocabulary words."""
    special = {"[PAD]", "[CLS]", "[SEP]", "[MASK]"}
    out = ""
    for i in np.asarray(ids, np.int64).reshape(-1):
      tok = self.vocab[int(i)]
      if tok in special:
        continue
      out += tok[2:] if tok.startswith("##") else (" " + tok if out else tok)
    return out

  def encode_fixed(self, text: str, length: int) -> np.ndarray:
    """[CLS] ids... [SEP] padded with [PAD] (or truncated) to ``length``."""
    body = self.encode(text)[:max(0, length - 2)]
    out = np.full(length, self.pad_id, np.int32)
    out[0] = self.cls_id
    out[1:1 + len(body)] = body
    out[min(1 + len(body), length - 1)] = self.sep_id
    return out

  chunks = ByteTokenizer.chunks

  def to_json(self) -> str:
    return json.dumps({"name": self.name, "vocab": self.vocab,
                       "lower": self.lower})


_WORD = re.compile(rb"\s?[^\s]+|\s+")


def pretokenize(data: bytes) -> list[bytes]:
  """Pre-tokens: a word with its leading space, or a run of whitespace
  (GPT-2's byte-level BPE idea, simplified: merges never cross words)."""
  return _WORD.findall(data)


def train_bpe(text: str, merges: int) -> tuple[tuple[int, int], ...]:
  """Byte-level BPE merges learned on ``text`` (Sennrich et al. 2016,
  Algorithm 1, over UTF-8 bytes as in GPT-2): repeatedly merge the most
  frequent adjacent pair (ties: the smallest pair), ``merges`` times or
  until no pair occurs twice. Pair counts are updated only in the words
  that contain the merged pair, so a few thousand merges on a few MB of
  text take seconds in pure Python."""
  counts = collections.Counter(pretokenize(text.encode("utf-8")))
  words = [[b + NUM_SPECIAL for b in w] for w in counts]
  freq = list(counts.values())
  pairs: collections.Counter = collections.Counter()
  where: dict = collections.defaultdict(set)
  for i, w in enumerate(words):
    for a, b in zip(w, w[1:]):
      pairs[a, b] += freq[i]
      where[a, b].add(i)
  out = []
  for new in range(256 + NUM_SPECIAL, 256 + NUM_SPECIAL + merges):
    if not pairs:
      break
    best = max(pairs.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
    if best[1] < 2:
      break
    pair = best[0]
    out.append(pair)
    for i in list(where.pop(pair, ())):
      w, f = words[i], freq[i]
      for a, b in zip(w, w[1:]):
        pairs[a, b] -= f
        if pairs[a, b] <= 0:
          del pairs[a, b]
      merged, j = [], 0
      while j < len(w):
        if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
          merged.append(new)
          j += 2
        else:
          merged.append(w[j])
          j += 1
      words[i] = merged
      for a, b in zip(merged, merged[1:]):
        pairs[a, b] += f
        where[a, b].add(i)
  return tuple(out)


@dataclasses.dataclass(frozen=True)
class BPETokenizer:
  """Byte-level BPE: ids 0-3 special, 4..259 the bytes (as
  :class:`ByteTokenizer`), then one id per learned merge (in merge order).
  Round-trips every text exactly (bytes are the fallback); a word is
  encoded by applying the merges in rank order (Sennrich et al. 2016)."""
  merges: tuple[tuple[int, int], ...]
  name: str = "bpe"
  pad_id: int = PAD
  cls_id: int = CLS
  sep_id: int = SEP
  mask_id: int = MASK
  num_special: int = NUM_SPECIAL

  @classmethod
  def train(cls, text: str, merges: int) -> "BPETokenizer":
    return cls(train_bpe(text, merges))

  @property
  def vocab_size(self) -> int:
    return 256 + NUM_SPECIAL + len(self.merges)

  @functools.cached_property
  def ranks(self) -> dict[tuple[int, int], int]:
    return {p: 256 + NUM_SPECIAL + r for r, p in enumerate(self.merges)}

  @functools.cached_property
  def pieces(self) -> list[bytes]:
    """The bytes of every id (b"" for the special tokens)."""
    out = [b""] * NUM_SPECIAL + [bytes([b]) for b in range(256)]
    for a, b in self.merges:
      out.append(out[a] + out[b])
    return out

  @functools.cached_property
  def _cache(self) -> dict[bytes, list[int]]:
    return {}

  def _word(self, word: bytes) -> list[int]:
    if word in self._cache:
      return self._cache[word]
    w = [b + NUM_SPECIAL for b in word]
    while len(w) > 1:
      ids = [self.ranks.get(p, 1 << 30) for p in zip(w, w[1:])]
      j = int(np.argmin(ids))
      if ids[j] == 1 << 30:
        break
      w = w[:j] + [ids[j]] + w[j + 2:]
    self._cache[word] = w
    return w

  def encode(self, text: str) -> np.ndarray:
    """int32 ids of ``text`` (no special tokens)."""
    ids = [i for w in pretokenize(text.encode("utf-8")) for i in self._word(w)]
    return np.asarray(ids, np.int32)

  def decode(self, ids) -> str:
    """The text of ``ids``; special tokens are dropped."""
    return b"".join(self.pieces[int(i)] for i in np.asarray(
        ids, np.int64).reshape(-1)).decode("utf-8", errors="replace")

  encode_fixed = ByteTokenizer.encode_fixed
  chunks = ByteTokenizer.chunks

  def to_json(self) -> str:
    return json.dumps({"name": self.name, "merges": self.merges})

  @classmethod
  def from_json(cls, text: str) -> "BPETokenizer":
    d = json.loads(text)
    return cls(tuple(tuple(p) for p in d["merges"]), d.get("name", "bpe"))


TOKENIZERS = {"bytes": ByteTokenizer, "bpe": BPETokenizer,
              "wordpiece": WordPieceTokenizer}
Tokenizer = ByteTokenizer | BPETokenizer | WordPieceTokenizer


def get(name: str, train_text: str = "", merges: int = 0,
        key: str = "text.tokenizer") -> Tokenizer:
  """The tokenizer ``name``: ``bytes``; ``bpe`` trained on ``train_text``
  with ``merges`` merges. ``wordpiece`` needs a ``vocab.txt``
  (:meth:`WordPieceTokenizer.from_file`), so it is not built here."""
  from jaxticket.core.checks import ConfigError, check_choice
  check_choice(key, name, TOKENIZERS, "tokenizer")
  if name == "bytes":
    return ByteTokenizer()
  if name == "bpe":
    if merges < 1:
      raise ConfigError(f"{key}=bpe needs a number of merges >= 1 "
                        f"(pretrain.bpe_merges); got {merges}.")
    return BPETokenizer.train(train_text, merges)
  raise ConfigError(f"{key}=wordpiece reads a Hugging Face checkpoint's "
                    "vocab.txt: set --config.init.checkpoint=HF_FOLDER.")


def dumps(tok: Tokenizer) -> str:
  """JSON of ``tok`` (its name and what it was trained to: merges or
  vocabulary); :func:`loads` inverts it."""
  if isinstance(tok, ByteTokenizer):
    return json.dumps({"name": "bytes"})
  return tok.to_json()


def loads(text: str) -> Tokenizer:
  """The tokenizer :func:`dumps` wrote (ValueError if unreadable)."""
  d = json.loads(text)
  name = d.get("name")
  if name == "bytes":
    return ByteTokenizer()
  if name == "bpe":
    return BPETokenizer.from_json(text)
  if name == "wordpiece":
    return WordPieceTokenizer(tuple(d["vocab"]), bool(d.get("lower", True)))
  raise ValueError(f"unknown tokenizer {name!r}")


__all__ = ["ByteTokenizer", "BPETokenizer", "train_bpe", "pretokenize",
           "WordPieceTokenizer", "basic_split", "TOKENIZERS", "Tokenizer",
           "get", "dumps", "loads", "PAD",
           "CLS", "SEP", "MASK"]
