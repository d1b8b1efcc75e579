"""Masked language modelling (Devlin et al. 2019, Sec. 3.1 "Task #1").

Of the ordinary (non-special, non-padding) tokens, each is *selected* with
probability ``select_rate`` (15%); a selected token is replaced by [MASK]
with probability 0.8, by a random ordinary token with 0.1, and kept with
0.1. The loss is the cross-entropy on the selected positions only, averaged
over the selected tokens of the batch; the score is the accuracy there.

We follow the code BERT-tickets trains with (Hugging Face's
``DataCollatorForLanguageModeling``): independent Bernoulli draws per token
(the paper's original pipeline picks exactly round(15%) per sequence), and
the random replacement drawn among ordinary tokens (Hugging Face draws from
the whole vocabulary, special tokens included).

The corruption is :meth:`MaskedLM.prepare`, a pure function of a key: the
training step calls it with a key folded from the replica's data key and the
step, so masking runs inside the compiled scan and differs per step and per
replica; evaluation uses a fixed key, so every replica and every evaluation
sees the same masked positions.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

IGNORE = -1  # label of an ordinary token that was not selected
SPECIAL = -2  # label of a special or padding position (never selected)


@dataclasses.dataclass(frozen=True)
class MaskedLM:
  """MLM over token ids (B, L); outputs are logits (B, L, vocab)."""
  vocab_size: int
  mask_id: int = 3
  num_special: int = 4  # ids below this are [PAD] [CLS] [SEP] [MASK]
  select_rate: float = 0.15
  mask_fraction: float = 0.8
  random_fraction: float = 0.1
  score_name: str = "masked-token accuracy"

  def prepare(self, key: jax.Array, tokens: jax.Array, targets: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """(corrupted tokens, labels): labels hold the original token where a
    position was selected, :data:`IGNORE` at other ordinary tokens and
    :data:`SPECIAL` at special/padding positions. ``targets`` (the
    dataset's placeholders) are ignored."""
    del targets
    tokens = tokens.astype(jnp.int32)
    k_sel, k_how, k_tok = jax.random.split(key, 3)
    ordinary = tokens >= self.num_special
    selected = ordinary & jax.random.bernoulli(k_sel, self.select_rate,
                                               tokens.shape)
    u = jax.random.uniform(k_how, tokens.shape)
    to_mask = selected & (u < self.mask_fraction)
    to_random = selected & (u >= self.mask_fraction) & (
        u < self.mask_fraction + self.random_fraction)
    random_tokens = jax.random.randint(k_tok, tokens.shape, self.num_special,
                                       self.vocab_size)
    out = jnp.where(to_mask, self.mask_id, tokens)
    out = jnp.where(to_random, random_tokens, out)
    labels = jnp.where(selected, tokens, jnp.where(ordinary, IGNORE,
                                                   SPECIAL))
    return out, labels

  def per_example(self, outputs: jax.Array, targets: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    """Per-example (loss, accuracy) weighted so that their sum over the
    batch's real examples, divided by their number, is the mean over the
    batch's selected tokens. Rows holding no ordinary token (an evaluation
    batch padded to its fixed size) count for nothing."""
    chosen = targets >= 0
    labels = jnp.where(chosen, targets, 0)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs, labels)
    hit = (jnp.argmax(outputs, -1) == labels).astype(jnp.float32)
    w = chosen.astype(jnp.float32)
    rows = jnp.any(targets != SPECIAL, axis=-1).sum()
    scale = rows / jnp.maximum(w.sum(), 1.0)
    return (ce * w).sum(-1) * scale, (hit * w).sum(-1) * scale


__all__ = ["MaskedLM", "IGNORE"]
