"""A small BERT-style transformer encoder (Devlin et al. 2019) for tickets in
pre-trained transformers (Chen et al., "The Lottery Ticket Hypothesis for
Pre-trained BERT Networks", NeurIPS 2020).

Input: token ids (B, L) (any dtype; cast to int32; id :data:`PAD_ID` is
padding and is never attended to). Token + learned position embeddings,
``layers`` blocks of multi-head self-attention and a GELU MLP, then either

- ``output="classify"``: BERT's pooler (Dense + tanh) on a summary of the
  final hidden states, and a linear classifier ``head`` -> logits
  (B, num_classes). The summary is ``pool="cls"``: the first, [CLS], token
  (BERT, Devlin et al. 2019, Sec. 3), or ``pool="mean"``: the mean over the
  non-padding tokens (Sentence-BERT's MEAN strategy, Reimers & Gurevych
  2019, Sec. 3). Masked-LM pre-training never predicts the [CLS] position
  (it is never a target), so without BERT's next-sentence objective its
  [CLS] state is untrained; the mean reads the states MLM did train. Or
- ``output="mlm"``: BERT's MLM head (Dense + GELU + LayerNorm, then a
  decoder to the vocabulary) -> logits (B, L, vocab). The decoder is its own
  matrix (BERT ties it to the token embedding; untied here so that the
  embedding is one leaf with one role; a documented difference).

``norm="post"`` is BERT's original LayerNorm placement (after each residual
sum, plus a LayerNorm on the embeddings); ``norm="pre"`` normalizes each
sublayer's input and adds a final LayerNorm (Xiong et al. 2020: trains
without warm-up, more stable for small, short runs).

Parameter paths are chosen so that :data:`PRUNABLE` selects exactly the
weights BERT-tickets prunes (VITA-Group/BERT-Tickets prunes the ``weight``
of query, key, value, attention output, intermediate and output dense of
every layer, and the pooler): never the embeddings, LayerNorms, biases, the
MLM head or the task ``head``. Dropout is not used (the step passes no
dropout key); BERT uses 0.1.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

#: Token id of padding (masked out of attention; never an MLM target).
PAD_ID = 0

#: The leaves BERT-tickets prunes: Q, K, V, attention output, intermediate
#: and output dense kernels of every layer, and the pooler.
PRUNABLE = (r"^(layer_\d+/(attention/(query|key|value|out)|"
            r"mlp/(intermediate|output))|pooler)/kernel$")

NORMS = ("post", "pre")
OUTPUTS = ("classify", "mlm")
POOLS = ("cls", "mean")

_init = nn.initializers.normal(0.02)  # BERT's initializer_range


class SelfAttention(nn.Module):
  """Multi-head scaled dot-product self-attention (Vaswani et al. 2017)
  with separate ``query``/``key``/``value``/``out`` Dense layers (BERT's
  layout, so each is one prunable leaf)."""
  dim: int
  heads: int

  @nn.compact
  def __call__(self, x: jax.Array, keep: jax.Array) -> jax.Array:
    b, n, _ = x.shape
    d = self.dim // self.heads
    split = lambda y: y.reshape(b, n, self.heads, d)
    q = split(nn.Dense(self.dim, kernel_init=_init, name="query")(x))
    k = split(nn.Dense(self.dim, kernel_init=_init, name="key")(x))
    v = split(nn.Dense(self.dim, kernel_init=_init, name="value")(x))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(d).astype(x.dtype)
    logits = jnp.where(keep[:, None, None, :], logits,
                       jnp.finfo(logits.dtype).min)
    att = jax.nn.softmax(logits, axis=-1)
    y = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, self.dim)
    return nn.Dense(self.dim, kernel_init=_init, name="out")(y)


class MLPBlock(nn.Module):
  """BERT's feed-forward sublayer: ``intermediate`` (GELU) then ``output``."""
  dim: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.gelu(nn.Dense(self.mlp_dim, kernel_init=_init,
                         name="intermediate")(x), approximate=False)
    return nn.Dense(self.dim, kernel_init=_init, name="output")(h)


class EncoderLayer(nn.Module):
  """One block: attention and MLP sublayers, residual, LayerNorm pre/post."""
  dim: int
  heads: int
  mlp_dim: int
  norm: str = "post"

  @nn.compact
  def __call__(self, x: jax.Array, keep: jax.Array) -> jax.Array:
    att = SelfAttention(self.dim, self.heads, name="attention")
    mlp = MLPBlock(self.dim, self.mlp_dim, name="mlp")
    ln1 = nn.LayerNorm(epsilon=1e-12, name="attention_norm")
    ln2 = nn.LayerNorm(epsilon=1e-12, name="mlp_norm")
    if self.norm == "pre":
      x = x + att(ln1(x), keep)
      return x + mlp(ln2(x))
    x = ln1(x + att(x, keep))
    return ln2(x + mlp(x))


def pool(h: jax.Array, keep: jax.Array, how: str) -> jax.Array:
  """(B, L, D) hidden states -> (B, D): the [CLS] (first) state, or the
  mean over the positions where ``keep`` (B, L) is True (padding never
  counts; a row with no kept token gives zeros)."""
  if how == "cls":
    return h[:, 0]
  w = keep.astype(h.dtype)[..., None]
  return (h * w).sum(1) / jnp.maximum(w.sum(1), 1.0)


class Transformer(nn.Module):
  """BERT-style encoder; see the module docstring for the two outputs."""
  vocab_size: int
  num_classes: int
  layers: int = 2
  heads: int = 4
  dim: int = 128
  mlp_dim: int = 512
  max_len: int = 128
  norm: str = "post"
  output: str = "classify"
  pool: str = "cls"

  def setup_check(self) -> None:
    if self.norm not in NORMS:
      raise ValueError(f"transformer norm must be one of {NORMS}; got "
                       f"{self.norm!r}.")
    if self.output not in OUTPUTS:
      raise ValueError(f"transformer output must be one of {OUTPUTS}; got "
                       f"{self.output!r}.")
    if self.pool not in POOLS:
      raise ValueError(f"transformer pool must be one of {POOLS}; got "
                       f"{self.pool!r}.")
    if self.dim % self.heads:
      raise ValueError(f"transformer dim={self.dim} must be a multiple of "
                       f"heads={self.heads}.")

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    self.setup_check()
    tokens = x.astype(jnp.int32).reshape(x.shape[0], -1)
    if tokens.shape[1] > self.max_len:
      raise ValueError(f"sequence length {tokens.shape[1]} exceeds the "
                       f"transformer's max_len={self.max_len}.")
    keep = tokens != PAD_ID
    h = nn.Embed(self.vocab_size, self.dim, embedding_init=_init,
                 name="token_embed")(tokens)
    pos = self.param("position_embed", _init, (self.max_len, self.dim))
    h = h + pos[None, :tokens.shape[1]]
    if self.norm == "post":
      h = nn.LayerNorm(epsilon=1e-12, name="embed_norm")(h)
    for i in range(self.layers):
      h = EncoderLayer(self.dim, self.heads, self.mlp_dim, self.norm,
                       name=f"layer_{i}")(h, keep)
    if self.norm == "pre":
      h = nn.LayerNorm(epsilon=1e-12, name="final_norm")(h)
    if self.output == "mlm":
      t = nn.gelu(nn.Dense(self.dim, kernel_init=_init,
                           name="mlm_transform")(h), approximate=False)
      t = nn.LayerNorm(epsilon=1e-12, name="mlm_norm")(t)
      return nn.Dense(self.vocab_size, kernel_init=_init, name="mlm_head")(t)
    pooled = jnp.tanh(nn.Dense(self.dim, kernel_init=_init,
                               name="pooler")(pool(h, keep, self.pool)))
    return nn.Dense(self.num_classes, kernel_init=_init, name="head")(pooled)


__all__ = ["Transformer", "PRUNABLE", "PAD_ID", "NORMS", "OUTPUTS", "POOLS",
           "pool"]
