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
"""

from __future__ import annotations

import dataclasses

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
    out = np.full(length, PAD, np.int32)
    out[0] = CLS
    out[1:1 + len(body)] = body
    out[min(1 + len(body), length - 1)] = SEP
    return out

  def chunks(self, text: str, length: int) -> np.ndarray:
    """``text`` cut into consecutive windows of ``length - 2`` bytes, each
    as [CLS] window [SEP] (the last one padded): (N, length) int32, the
    pre-training examples of a corpus."""
    ids = self.encode(text)
    body = length - 2
    n = max(1, -(-len(ids) // body))
    out = np.full((n, length), PAD, np.int32)
    out[:, 0] = CLS
    for i in range(n):
      piece = ids[i * body:(i + 1) * body]
      out[i, 1:1 + len(piece)] = piece
      out[i, 1 + len(piece)] = SEP
    return out


TOKENIZERS = {"bytes": ByteTokenizer}


def get(name: str) -> ByteTokenizer:
  from jaxticket.core.checks import check_choice
  check_choice("text.tokenizer", name, TOKENIZERS, "tokenizer")
  return TOKENIZERS[name]()


__all__ = ["ByteTokenizer", "TOKENIZERS", "get", "PAD", "CLS", "SEP", "MASK"]
