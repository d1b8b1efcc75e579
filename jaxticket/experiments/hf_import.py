"""Import a Hugging Face BERT checkpoint from a local folder into the
registry's encoder (``models/transformer.py``), issue 17 item 6.

For users with a network: download e.g. ``google/bert_uncased_L-2_H-128_A-2``
elsewhere, copy the folder here, and pass it as
``--config.init.checkpoint=DIR``. ``DIR`` holds Hugging Face's layout:

- ``config.json`` (``model_type`` bert-family: ``hidden_size``,
  ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``,
  ``max_position_embeddings``, ``vocab_size``, ``hidden_act``), and
- the weights: ``model.safetensors`` (read with NumPy: the format is an
  8-byte header length, a JSON header and the raw buffer; the optional
  ``safetensors`` package, extra ``[hf]``, is used when installed),
  ``flax_model.msgpack`` (``flax.serialization``), or ``pytorch_model.bin``
  (needs ``torch``; otherwise one line asking to convert it), and
- ``vocab.txt`` (read by :class:`jaxticket.data.tokenizer.WordPieceTokenizer`).

The name map (Devlin et al. 2019, Fig. 2 / Vaswani et al. 2017 Sec. 3.2;
names as in transformers' ``modeling_bert.py``):

==============================================  ==========================
BERT                                            ours
==============================================  ==========================
embeddings.word_embeddings                      token_embed/embedding
embeddings.position_embeddings                  position_embed
embeddings.token_type_embeddings[0]             folded into position_embed
embeddings.LayerNorm                            embed_norm
encoder.layer.N.attention.self.query/key/value  layer_N/attention/query...
encoder.layer.N.attention.output.dense          layer_N/attention/out
encoder.layer.N.attention.output.LayerNorm      layer_N/attention_norm
encoder.layer.N.intermediate.dense              layer_N/mlp/intermediate
encoder.layer.N.output.dense                    layer_N/mlp/output
encoder.layer.N.output.LayerNorm                layer_N/mlp_norm
pooler.dense                                    pooler
cls.predictions.transform.dense / LayerNorm     mlm_transform / mlm_norm
cls.predictions.decoder (tied: word emb.) +bias mlm_head
==============================================  ==========================

Torch ``Linear.weight`` is (out, in): transposed to Flax's (in, out)
kernel; Flax checkpoints already are (in, out). The token-type embedding:
our encoder has no segment input (single-sentence tasks, segment 0 always),
so row 0 is added to every position embedding -- exact for segment-0 inputs
(BERT's embedding sum is word + position + type). BERT is post-LN, GELU
(erf), LayerNorm eps 1e-12: the encoder must be built with ``norm="post"``;
other ``hidden_act`` values are refused. The classifier ``head`` is never
in a BERT checkpoint and keeps its fresh init (BERT-tickets' start).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from jaxticket.core.checks import ConfigError

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "flax_model.msgpack", "pytorch_model.bin")
VOCAB = "vocab.txt"
#: ``model_type`` values whose layout is BERT's.
MODEL_TYPES = ("bert",)

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
              "I64": np.int64, "I32": np.int32, "I16": np.int16,
              "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def is_hf_dir(directory: str) -> bool:
  """``directory`` holds ``config.json`` and one of :data:`WEIGHTS`."""
  return bool(directory) and os.path.isfile(
      os.path.join(directory, CONFIG)) and any(
          os.path.isfile(os.path.join(directory, w)) for w in WEIGHTS)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """All tensors of a ``.safetensors`` file as NumPy arrays (no package
  needed: u64 little-endian header size, JSON header, raw buffer)."""
  with open(path, "rb") as f:
    n = int.from_bytes(f.read(8), "little")
    header = json.loads(f.read(n))
    buf = f.read()
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    start, end = info["data_offsets"]
    if info["dtype"] == "BF16":
      import ml_dtypes  # ships with jax
      dtype = ml_dtypes.bfloat16
    elif info["dtype"] in _ST_DTYPES:
      dtype = _ST_DTYPES[info["dtype"]]
    else:
      raise ConfigError(f"{path}: tensor {name} has dtype {info['dtype']}, "
                        "which this reader does not know.")
    out[name] = np.frombuffer(buf[start:end], dtype).reshape(info["shape"])
  return out


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
  """Write ``tensors`` in the ``.safetensors`` layout (tests, conversions)."""
  names = {v: k for k, v in _ST_DTYPES.items()}
  header, chunks, offset = {}, [], 0
  for name, value in tensors.items():
    value = np.ascontiguousarray(value)
    raw = value.tobytes()
    header[name] = {"dtype": names[value.dtype.type],
                    "shape": list(value.shape),
                    "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  blob = json.dumps(header).encode()
  blob += b" " * (-len(blob) % 8)
  with open(path, "wb") as f:
    f.write(len(blob).to_bytes(8, "little"))
    f.write(blob)
    for raw in chunks:
      f.write(raw)


def _flax_to_torch_names(tree: dict, prefix: str = "") -> dict:
  """Flatten a Hugging Face Flax tree to torch names and orientation."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}.{key}" if prefix else str(key)
    if isinstance(value, dict):
      out.update(_flax_to_torch_names(value, name))
      continue
    value = np.asarray(value)
    if key == "kernel":
      out[name[:-len("kernel")] + "weight"] = value.T
    elif key in ("embedding", "scale"):
      out[name[:-len(key)] + "weight"] = value
    else:
      out[name] = value
  return out


def read_tensors(directory: str) -> dict[str, np.ndarray]:
  """The checkpoint's tensors under torch names (``bert.`` prefix dropped;
  old TF conversions' ``gamma``/``beta`` renamed ``weight``/``bias``)."""
  path = next(os.path.join(directory, w) for w in WEIGHTS
              if os.path.isfile(os.path.join(directory, w)))
  if path.endswith(".safetensors"):
    try:
      from safetensors.numpy import load_file
      tensors = load_file(path)
    except ImportError:
      tensors = read_safetensors(path)
  elif path.endswith(".msgpack"):
    from flax import serialization
    with open(path, "rb") as f:
      tensors = _flax_to_torch_names(serialization.msgpack_restore(f.read()))
  else:
    try:
      import torch
    except ImportError:
      raise ConfigError(
          f"init.checkpoint={directory!r}: pytorch_model.bin needs torch, "
          "which is not installed; install it, or save the model as "
          "model.safetensors (save_pretrained(..., safe_serialization=True))."
      ) from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {k: v.float().numpy() for k, v in state.items()}
  out = {}
  for name, value in tensors.items():
    name = re.sub(r"^bert\.", "", name)
    name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
    out[name] = np.asarray(value, np.float32)
  return out


def read_config(directory: str) -> dict:
  with open(os.path.join(directory, CONFIG)) as f:
    hf = json.load(f)
  kind = hf.get("model_type", "bert")
  if kind not in MODEL_TYPES:
    raise ConfigError(f"init.checkpoint={directory!r}: model_type={kind!r} "
                      f"is not one of {MODEL_TYPES} (the BERT layout).")
  act = hf.get("hidden_act", "gelu")
  if act != "gelu":
    raise ConfigError(f"init.checkpoint={directory!r}: hidden_act={act!r}; "
                      "the encoder computes BERT's exact (erf) 'gelu' only.")
  return hf


def meta(directory: str) -> dict:
  """The ``pretrained.json``-like facts of a Hugging Face folder."""
  hf = read_config(directory)
  dim, heads = int(hf["hidden_size"]), int(hf["num_attention_heads"])
  return {"tokenizer": "wordpiece", "vocab_size": int(hf["vocab_size"]),
          "layers": int(hf["num_hidden_layers"]), "heads": heads,
          "dim": dim, "mlp_ratio": int(hf["intermediate_size"]) // dim,
          "mlp_dim": int(hf["intermediate_size"]),
          "max_len": int(hf["max_position_embeddings"]), "norm": "post",
          "source": "huggingface", "model_type": hf.get("model_type",
                                                       "bert")}


def convert(directory: str) -> dict[str, np.ndarray]:
  """``{our leaf path: value}`` of the Hugging Face checkpoint in
  ``directory`` (see the module docstring's table)."""
  hf = read_config(directory)
  t = read_tensors(directory)
  need = "embeddings.word_embeddings.weight"
  if need not in t:
    raise ConfigError(f"init.checkpoint={directory!r}: no {need} in the "
                      "weights; not a BERT-layout checkpoint.")
  out = {}

  def dense(src: str, dst: str) -> None:
    if src + ".weight" in t:
      out[dst + "/kernel"] = t[src + ".weight"].T
      out[dst + "/bias"] = t[src + ".bias"]

  def norm(src: str, dst: str) -> None:
    if src + ".weight" in t:
      out[dst + "/scale"] = t[src + ".weight"]
      out[dst + "/bias"] = t[src + ".bias"]

  out["token_embed/embedding"] = t[need]
  pos = t["embeddings.position_embeddings.weight"]
  types = t.get("embeddings.token_type_embeddings.weight")
  out["position_embed"] = pos + (types[0] if types is not None else 0.0)
  norm("embeddings.LayerNorm", "embed_norm")
  for i in range(int(hf["num_hidden_layers"])):
    src, dst = f"encoder.layer.{i}", f"layer_{i}"
    for part in ("query", "key", "value"):
      dense(f"{src}.attention.self.{part}", f"{dst}/attention/{part}")
    dense(f"{src}.attention.output.dense", f"{dst}/attention/out")
    norm(f"{src}.attention.output.LayerNorm", f"{dst}/attention_norm")
    dense(f"{src}.intermediate.dense", f"{dst}/mlp/intermediate")
    dense(f"{src}.output.dense", f"{dst}/mlp/output")
    norm(f"{src}.output.LayerNorm", f"{dst}/mlp_norm")
  dense("pooler.dense", "pooler")
  dense("cls.predictions.transform.dense", "mlm_transform")
  norm("cls.predictions.transform.LayerNorm", "mlm_norm")
  if "cls.predictions.bias" in t:
    decoder = t.get("cls.predictions.decoder.weight", t[need])  # tied
    out["mlm_head/kernel"] = decoder.T
    out["mlm_head/bias"] = t["cls.predictions.bias"]
  return out


def check_model(directory: str, model_paths: set[str]) -> None:
  """A BERT checkpoint needs the post-LN encoder (one line otherwise)."""
  if "embed_norm/scale" not in model_paths:
    raise ConfigError(
        f"init.checkpoint={directory!r} is a post-LN BERT checkpoint; build "
        "the encoder with norm='post' (pretrain.norm=post).")


def nest(flat: dict[str, Any]) -> dict:
  """``{"a/b/c": v}`` -> ``{"a": {"b": {"c": v}}}`` (a params tree)."""
  tree: dict = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


__all__ = ["is_hf_dir", "read_safetensors", "write_safetensors",
           "read_tensors", "read_config", "meta", "convert", "check_model",
           "nest", "CONFIG", "WEIGHTS", "VOCAB"]
