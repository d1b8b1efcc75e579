"""Pre-trained weights as a starting point: ``--config.init.checkpoint=DIR``
(issue 17).

``DIR`` is the workdir of a finished ``jaxticket pretrain`` run: it holds
``pretrained.json`` (tokenizer, vocabulary size, the encoder's options) and
``checkpoints/pretrained`` (orbax: the encoder's params, MLM head included).
:func:`load_into` copies every checkpoint leaf whose path the new model also
has into its freshly initialized params; the leaves the checkpoint lacks
(a classifier's ``pooler`` and ``head``) keep their fresh init, leaves only
the checkpoint has (the MLM head) are dropped. This is BERT-tickets' start:
every pre-trained tensor at its pre-trained value, a new task head.
A missing checkpoint, another tokenizer or vocabulary, or a leaf of another
shape is one :class:`ConfigError` line.

The tokenizer travels with the weights: a trained one (``bpe``) is written
to ``tokenizer.json`` next to ``pretrained.json`` (whose ``tokenizer_sha256``
is that file's hash), and :func:`tokenizer_of` is what every later command
tokenizes with (transfer, pretrain's downstream and continued pre-training),
so ids are the pre-training's. A checkpoint without ``tokenizer.json``
(older runs, ``bytes``) is the byte tokenizer. A file that does not match
``pretrained.json`` (another name, vocabulary size or hash) is one
"vocabulary mismatch" line.

``DIR`` may instead be a Hugging Face BERT folder (``config.json`` and
``model.safetensors`` / ``flax_model.msgpack`` / ``pytorch_model.bin``):
:mod:`jaxticket.experiments.hf_import` maps its names onto ours, and its
``vocab.txt`` is the tokenizer (WordPiece; lower-cased unless
``tokenizer_config.json`` says ``"do_lower_case": false``). A position
table longer than the model's ``max_len`` (BERT: 512) gives its first rows
(the positions the model uses).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import numpy as np

from jaxticket.core import checkpoint
from jaxticket.core.checks import ConfigError
from jaxticket.core.masks import path_str
from jaxticket.data import tokenizer as tokenizer_lib
from jaxticket.experiments import hf_import

PyTree = Any
META = "pretrained.json"
PARAMS = os.path.join("checkpoints", "pretrained")
TOKENIZER = "tokenizer.json"


def _sha256(text: str) -> str:
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save(directory: str, params: PyTree, meta: dict, tok=None) -> None:
  """Write the pre-trained ``params`` (one replica), ``meta`` and, unless
  it is the byte tokenizer (nothing to store), ``tok`` as
  ``tokenizer.json`` (its hash in ``meta``)."""
  meta = dict(meta)
  if tok is not None and tok.name != "bytes":
    text = tokenizer_lib.dumps(tok)
    with open(os.path.join(directory, TOKENIZER), "w") as f:
      f.write(text)
    meta["tokenizer_sha256"] = _sha256(text)
  checkpoint.save_tree(os.path.join(directory, PARAMS), {"params": params})
  with open(os.path.join(directory, META), "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)


def _mismatch(directory: str, what: str) -> ConfigError:
  return ConfigError(
      f"init.checkpoint={directory!r}: vocabulary mismatch: {what}; "
      f"restore that run's {TOKENIZER} or pre-train again.")


def tokenizer_of(directory: str, meta: dict | None = None):
  """The tokenizer the checkpoint in ``directory`` was trained with (see
  the module docstring); one :class:`ConfigError` line when its file is
  missing, unreadable or disagrees with ``pretrained.json``."""
  meta = read_meta(directory) if meta is None else meta
  if hf_import.is_hf_dir(directory):
    path = os.path.join(directory, hf_import.VOCAB)
    if not os.path.isfile(path):
      raise ConfigError(
          f"init.checkpoint={directory!r}: no {hf_import.VOCAB} (the "
          "WordPiece vocabulary of this Hugging Face model); copy it from "
          "the model's folder.")
    lower = True
    cfg_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(cfg_path):
      with open(cfg_path) as f:
        lower = bool(json.load(f).get("do_lower_case", True))
    tok = tokenizer_lib.WordPieceTokenizer.from_file(path, lower)
    try:
      tok.num_special  # [PAD] [UNK] [CLS] [SEP] [MASK] all present
    except ValueError as e:
      raise ConfigError(f"init.checkpoint={directory!r}: {e}") from None
    if tok.vocab_size != meta["vocab_size"]:
      raise _mismatch(directory, f"{hf_import.VOCAB} has {tok.vocab_size} "
                      f"tokens, config.json vocab_size={meta['vocab_size']}")
    return tok
  path = os.path.join(directory, TOKENIZER)
  name = meta.get("tokenizer", "bytes")
  if not os.path.isfile(path):
    if name != "bytes":
      raise _mismatch(directory, f"{META} names tokenizer {name!r} but "
                      f"{TOKENIZER} is missing")
    return tokenizer_lib.ByteTokenizer()
  with open(path) as f:
    text = f.read()
  try:
    tok = tokenizer_lib.loads(text)
  except (ValueError, KeyError, TypeError) as e:
    raise _mismatch(directory, f"{TOKENIZER} is unreadable ({e})") from None
  if (tok.name, tok.vocab_size) != (name, meta.get("vocab_size")):
    raise _mismatch(directory, f"{TOKENIZER} is {tok.name!r} with "
                    f"{tok.vocab_size} tokens, {META} says {name!r} with "
                    f"{meta.get('vocab_size')}")
  if meta.get("tokenizer_sha256", _sha256(text)) != _sha256(text):
    raise _mismatch(directory, f"{TOKENIZER} is not the file this "
                    "checkpoint was pre-trained with (hash differs)")
  return tok


def read_meta(directory: str) -> dict:
  """``pretrained.json`` of ``directory`` (one-line error if absent)."""
  if hf_import.is_hf_dir(directory):
    return hf_import.meta(directory)
  path = os.path.join(directory, META)
  if not os.path.exists(path) or not os.path.isdir(
      os.path.join(directory, PARAMS)):
    raise ConfigError(
        f"init.checkpoint={directory!r} holds no pre-trained checkpoint "
        f"({META} and {PARAMS}/ missing); run `jaxticket pretrain --workdir "
        f"{directory}` first or fix the path.")
  with open(path) as f:
    return json.load(f)


def check_vocabulary(directory: str, meta: dict, tokenizer: str,
                     vocab_size: int) -> None:
  if (meta.get("tokenizer"), meta.get("vocab_size")) != (tokenizer,
                                                         vocab_size):
    raise ConfigError(
        f"init.checkpoint={directory!r}: vocabulary mismatch: the checkpoint "
        f"was pre-trained with tokenizer {meta.get('tokenizer')!r} "
        f"({meta.get('vocab_size')} tokens), this run uses {tokenizer!r} "
        f"({vocab_size}); use the same tokenizer or pre-train again.")


def load_into(directory: str, params: PyTree, tokenizer: str,
              vocab_size: int) -> tuple[PyTree, list[str]]:
  """(``params`` with the checkpoint's values where paths match, the
  loaded paths). ``params``: one replica's (unstacked) tree."""
  meta = read_meta(directory)
  check_vocabulary(directory, meta, tokenizer, vocab_size)
  if hf_import.is_hf_dir(directory):
    flat_saved = hf_import.convert(directory)
    hf_import.check_model(directory, {path_str(p) for p, _ in
                                      jax.tree_util.tree_flatten_with_path(
                                          params)[0]})
  else:
    saved = checkpoint.load_tree(os.path.join(directory, PARAMS))["params"]
    flat_saved = {path_str(p): v for p, v in
                  jax.tree_util.tree_flatten_with_path(saved)[0]}
  loaded = []

  def take(path, leaf):
    name = path_str(path)
    if name not in flat_saved:
      return leaf
    value = np.asarray(flat_saved[name])
    if (name == "position_embed" and value.ndim == 2 and np.ndim(leaf) == 2
        and value.shape[0] > np.shape(leaf)[0]):
      value = value[:np.shape(leaf)[0]]  # a longer table: the used rows
    if value.shape != np.shape(leaf):
      raise ConfigError(
          f"init.checkpoint={directory!r}: leaf {name} has shape "
          f"{value.shape} there but {tuple(np.shape(leaf))} in this model; "
          f"the encoder options must match the pre-training's ({META}: "
          f"{ {k: meta.get(k) for k in ('layers', 'heads', 'dim', 'max_len')} }).")
    loaded.append(name)
    return value.astype(np.asarray(leaf).dtype)

  out = jax.tree_util.tree_map_with_path(take, params)
  if not loaded:
    raise ConfigError(f"init.checkpoint={directory!r}: no parameter of this "
                      "model is in the checkpoint (another model family?).")
  return out, loaded


__all__ = ["save", "read_meta", "load_into", "check_vocabulary",
           "tokenizer_of", "META", "PARAMS", "TOKENIZER"]
