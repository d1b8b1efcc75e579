"""Hugging Face BERT import (issue 17 item 6): a tiny randomly initialized
BERT checkpoint written by the test in the Hugging Face layout, loaded into
our encoder, whose forward must equal a NumPy re-implementation of BERT's
forward (transformers' ``modeling_bert.py`` semantics, written from the
torch-named tensors, independent of the name map)."""

import json

import jax
import numpy as np
import pytest
from scipy.special import erf

from jaxticket.core.checks import ConfigError
from jaxticket.data.tokenizer import WordPieceTokenizer, basic_split
from jaxticket.experiments import hf_import, init_checkpoint
from jaxticket.models.transformer import Transformer

V, H, HEADS, I, LAYERS, P = 40, 16, 4, 32, 2, 24


def tiny_bert(seed=0, mlm=True):
  """torch-named tensors (Linear weight = (out, in)) of a random BERT."""
  r = np.random.default_rng(seed)
  f = lambda *s: (0.3 * r.standard_normal(s)).astype(np.float32)
  t = {"embeddings.word_embeddings.weight": f(V, H),
       "embeddings.position_embeddings.weight": f(P, H),
       "embeddings.token_type_embeddings.weight": f(2, H),
       "embeddings.LayerNorm.weight": 1 + f(H),
       "embeddings.LayerNorm.bias": f(H),
       "pooler.dense.weight": f(H, H), "pooler.dense.bias": f(H)}
  for i in range(LAYERS):
    p = f"encoder.layer.{i}."
    for name in ("attention.self.query", "attention.self.key",
                 "attention.self.value", "attention.output.dense"):
      t[p + name + ".weight"], t[p + name + ".bias"] = f(H, H), f(H)
    t[p + "intermediate.dense.weight"] = f(I, H)
    t[p + "intermediate.dense.bias"] = f(I)
    t[p + "output.dense.weight"], t[p + "output.dense.bias"] = f(H, I), f(H)
    for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
      t[p + ln + ".weight"], t[p + ln + ".bias"] = 1 + f(H), f(H)
  if mlm:
    t["cls.predictions.transform.dense.weight"] = f(H, H)
    t["cls.predictions.transform.dense.bias"] = f(H)
    t["cls.predictions.transform.LayerNorm.weight"] = 1 + f(H)
    t["cls.predictions.transform.LayerNorm.bias"] = f(H)
    t["cls.predictions.bias"] = f(V)  # decoder tied to word_embeddings
  return t


def hf_config():
  return {"model_type": "bert", "vocab_size": V, "hidden_size": H,
          "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
          "intermediate_size": I, "max_position_embeddings": P,
          "hidden_act": "gelu", "type_vocab_size": 2,
          "layer_norm_eps": 1e-12}


def write_dir(path, tensors, kind="safetensors"):
  (path / "config.json").write_text(json.dumps(hf_config()))
  if kind == "safetensors":
    hf_import.write_safetensors(str(path / "model.safetensors"),
                                {"bert." + k: v for k, v in tensors.items()})
  else:  # Hugging Face's Flax layout: nested, kernels (in, out)
    from flax import serialization
    tree = {}
    for name, v in tensors.items():
      *parents, leaf = name.split(".")
      if leaf == "weight":
        leaf = ("embedding" if "embeddings" in parents[-1] else
                "scale" if parents[-1] == "LayerNorm" else "kernel")
        v = v.T if leaf == "kernel" else v
      node = tree
      for p in parents:
        node = node.setdefault(p, {})
      node[leaf] = v
    (path / "flax_model.msgpack").write_bytes(serialization.msgpack_serialize(
        {"bert": tree}))
  return str(path)


def np_bert(t, ids):
  """BERT forward in NumPy: (sequence output, pooled, MLM logits)."""
  gelu = lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))

  def ln(x, name):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * t[name + ".weight"] + t[
        name + ".bias"]

  lin = lambda x, name: x @ t[name + ".weight"].T + t[name + ".bias"]
  x = ids.astype(np.int64)
  b, n = x.shape
  h = (t["embeddings.word_embeddings.weight"][x]
       + t["embeddings.position_embeddings.weight"][:n]
       + t["embeddings.token_type_embeddings.weight"][0])
  h = ln(h, "embeddings.LayerNorm")
  add = np.where(x != 0, 0.0, np.finfo(np.float32).min)[:, None, None, :]
  d = H // HEADS
  for i in range(LAYERS):
    p = f"encoder.layer.{i}."
    heads = lambda y: y.reshape(b, n, HEADS, d).transpose(0, 2, 1, 3)
    q, k, v = (heads(lin(h, p + "attention.self." + s))
               for s in ("query", "key", "value"))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + add
    s = np.exp(s - s.max(-1, keepdims=True))
    a = (s / s.sum(-1, keepdims=True)) @ v
    a = a.transpose(0, 2, 1, 3).reshape(b, n, H)
    h = ln(lin(a, p + "attention.output.dense") + h,
           p + "attention.output.LayerNorm")
    m = lin(gelu(lin(h, p + "intermediate.dense")), p + "output.dense")
    h = ln(m + h, p + "output.LayerNorm")
  pooled = np.tanh(lin(h[:, 0], "pooler.dense"))
  z = ln(gelu(lin(h, "cls.predictions.transform.dense")),
         "cls.predictions.transform.LayerNorm")
  logits = z @ t["embeddings.word_embeddings.weight"].T + t[
      "cls.predictions.bias"]
  return h, pooled, logits


def ids_batch(n=12):
  r = np.random.default_rng(1)
  ids = r.integers(5, V, (3, n)).astype(np.int32)
  ids[:, 0] = 2
  ids[1, 8:] = 0  # padding
  ids[2, 5:] = 0
  return ids


def our_forward(directory, output, ids, max_len=P):
  model = Transformer(vocab_size=V, num_classes=H, layers=LAYERS, heads=HEADS,
                      dim=H, mlp_dim=I, max_len=max_len, norm="post",
                      output=output)
  fresh = model.init(jax.random.key(0), np.zeros((1, ids.shape[1]),
                                                 np.float32))["params"]
  fresh = jax.tree.map(np.asarray, fresh)
  if output == "classify":  # head = identity: logits = the pooled output
    fresh["head"] = {"kernel": np.eye(H, dtype=np.float32),
                     "bias": np.zeros(H, np.float32)}
  params, loaded = init_checkpoint.load_into(directory, fresh, "wordpiece", V)
  return np.asarray(model.apply({"params": params}, ids)), loaded


@pytest.mark.parametrize("kind", ["safetensors", "msgpack"])
def test_forward_equals_numpy_bert(tmp_path, kind):
  t = tiny_bert()
  d = write_dir(tmp_path, t, kind)
  ids = ids_batch()
  _, pooled, logits = np_bert(t, ids)
  got, loaded = our_forward(d, "classify", ids)
  assert "head/kernel" not in loaded and "pooler/kernel" in loaded
  np.testing.assert_allclose(got, pooled, atol=2e-5, rtol=1e-4)
  got, loaded = our_forward(d, "mlm", ids, max_len=16)  # position rows cut
  assert "mlm_head/kernel" in loaded and "pooler/kernel" not in loaded
  keep = ids != 0  # padded queries' outputs are never used (nor scored)
  np.testing.assert_allclose(got[keep], logits[keep], atol=1e-4, rtol=1e-4)


def test_the_comparison_can_fail(tmp_path):
  """A mis-mapped checkpoint (query/key swapped) is caught."""
  t = tiny_bert()
  d = write_dir(tmp_path, t)
  bad = dict(t)
  p = "encoder.layer.0.attention.self."
  bad[p + "query.weight"], bad[p + "key.weight"] = t[p + "key.weight"], t[
      p + "query.weight"]
  got, _ = our_forward(d, "classify", ids_batch())
  assert not np.allclose(got, np_bert(bad, ids_batch())[1], atol=1e-3)


def test_safetensors_reader_matches_the_package(tmp_path):
  st = pytest.importorskip("safetensors.numpy")
  t = tiny_bert(mlm=False)
  st.save_file(t, str(tmp_path / "a.safetensors"))
  hf_import.write_safetensors(str(tmp_path / "b.safetensors"), t)
  for name in ("a", "b"):  # our reader on theirs, theirs on ours
    ours = hf_import.read_safetensors(str(tmp_path / f"{name}.safetensors"))
    theirs = st.load_file(str(tmp_path / f"{name}.safetensors"))
    assert set(ours) == set(theirs) == set(t)
    for k in t:
      np.testing.assert_array_equal(ours[k], theirs[k])
      np.testing.assert_array_equal(ours[k], t[k])


def test_meta_and_errors(tmp_path):
  d = write_dir(tmp_path, tiny_bert())
  m = init_checkpoint.read_meta(d)
  assert (m["tokenizer"], m["vocab_size"], m["layers"], m["dim"],
          m["norm"]) == ("wordpiece", V, LAYERS, H, "post")
  fresh = jax.tree.map(np.asarray, Transformer(
      V, 2, LAYERS, HEADS, H, I, 16, norm="post").init(
          jax.random.key(0), np.zeros((1, 16)))["params"])
  with pytest.raises(ConfigError, match="vocabulary mismatch"):
    init_checkpoint.load_into(d, fresh, "bytes", 260)
  pre = jax.tree.map(np.asarray, Transformer(
      V, 2, LAYERS, HEADS, H, I, 16, norm="pre").init(
          jax.random.key(0), np.zeros((1, 16)))["params"])
  with pytest.raises(ConfigError, match="norm='post'"):
    init_checkpoint.load_into(d, pre, "wordpiece", V)
  cfg = hf_config() | {"hidden_act": "relu"}
  (tmp_path / "config.json").write_text(json.dumps(cfg))
  with pytest.raises(ConfigError, match="hidden_act"):
    init_checkpoint.read_meta(d)


def test_pytorch_bin_without_torch_is_one_line(tmp_path):
  try:
    import torch  # noqa: F401
    pytest.skip("torch is installed here")
  except ImportError:
    pass
  (tmp_path / "config.json").write_text(json.dumps(hf_config()))
  (tmp_path / "pytorch_model.bin").write_bytes(b"")
  with pytest.raises(ConfigError, match="needs torch"):
    hf_import.convert(str(tmp_path))


VOCAB = ("[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",
         "lord", "said", "##s", "un", "##to", "moses", ",", ".", "god", "e",
         "##e")


def test_wordpiece_round_trip_and_greedy_longest_match(tmp_path):
  (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  tok = WordPieceTokenizer.from_file(str(tmp_path / "vocab.txt"))
  assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.unk_id) == (
      0, 3, 4, 5, 2)
  text = "The LORD said unto Moses, Gods."
  ids = tok.encode(text)
  assert [VOCAB[i] for i in ids] == ["the", "lord", "said", "un", "##to",
                                     "moses", ",", "god", "##s", "."]
  normalized = " ".join(basic_split(text))
  assert tok.decode(ids) == normalized == "the lord said unto moses , gods ."
  assert tok.decode(tok.encode(normalized)) == normalized
  assert [VOCAB[i] for i in tok.encode("Éee zebra")] == ["e", "##e", "##e",
                                                         "[UNK]"]
  fixed = tok.encode_fixed("the lord said", 4)
  assert fixed.tolist() == [3, 6, 7, 4]
  assert tok.encode_fixed("god", 5).tolist() == [3, 15, 4, 0, 0]


def naive_bpe(text, merges):
  """Reference: recount every pair over the whole corpus after each merge."""
  from jaxticket.data.tokenizer import pretokenize
  words = [[b + 4 for b in w] for w in pretokenize(text.encode())]
  out = []
  for new in range(260, 260 + merges):
    counts = {}
    for w in words:
      for p in zip(w, w[1:]):
        counts[p] = counts.get(p, 0) + 1
    if not counts or max(counts.values()) < 2:
      break
    pair = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
    out.append(pair)
    for k, w in enumerate(words):
      m, j = [], 0
      while j < len(w):
        if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
          m.append(new)
          j += 2
        else:
          m.append(w[j])
          j += 1
      words[k] = m
  return tuple(out)


TEXT = ("In the beginning God created the heaven and the earth. And the earth "
        "was without form, and void; and darkness was upon the face of the "
        "deep. And the Spirit of God moved upon the face of the waters.\n")


def test_bpe_merges_equal_the_naive_reference_and_round_trip():
  from jaxticket.data.tokenizer import BPETokenizer, train_bpe
  text = TEXT * 3 + "Café naïve — 東京 😀 tabs\tand  spaces\n"
  assert train_bpe(text, 60) == naive_bpe(text, 60)
  tok = BPETokenizer.train(text, 60)
  assert tok.vocab_size == 260 + len(tok.merges)
  for t in (text, "unseen wörds, zebra-like!", "", "   \n\t x"):
    ids = tok.encode(t)
    assert ids.dtype == np.int32 and (ids >= 4).all()
    assert tok.decode(ids) == t
  assert len(tok.encode(TEXT)) < len(TEXT.encode()) / 2  # it compresses
  assert tok.pieces[260] == bytes(b - 4 for b in tok.merges[0])
  again = BPETokenizer.from_json(tok.to_json())
  assert again == tok and (again.encode(text) == tok.encode(text)).all()
  fixed = tok.encode_fixed("In the beginning", 6)
  assert fixed[0] == 1 and tok.decode(fixed) == tok.decode(
      tok.encode("In the beginning")[:4])
