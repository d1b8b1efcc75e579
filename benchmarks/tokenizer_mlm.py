"""Bytes vs BPE for MLM pre-training at an equal, short step budget
(issue 17 item 2: the tokenizer choice, justified by measured MLM accuracy
and speed).

For each tokenizer: ``jaxticket pretrain`` (no downstream) with the default
encoder and recipe but ``--steps`` steps, then, on the checkpoint it wrote,
the masked-token accuracy on the corpus' test windows (one fixed masking
key) counted two ways: per token (the MLM score) and per byte of text (a
correct BPE token recovers all of its bytes; a byte token one), since a
token is a different amount of text for each tokenizer. The step budget is
equal in steps and in tokens per window (``pretrain.seq_len``), so BPE sees
~3x more text per step. Wall times: the tokenizer's training + the
corpus' tokenization, and the MLM stage (one compile included).

  python benchmarks/tokenizer_mlm.py [--steps 300] [--merges 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket import config as config_lib
from jaxticket import models as models_lib
from jaxticket.core import checkpoint
from jaxticket.data import text_datasets
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.pretrain import pretrain


def byte_lengths(tok) -> np.ndarray:
  """Bytes of text per id (0 for the special tokens)."""
  if tok.name == "bytes":
    return np.array([0] * 4 + [1] * 256)
  return np.array([len(p) for p in tok.pieces])


def evaluate(wd: str, seq_len: int, max_eval: int) -> dict:
  meta = init_checkpoint.read_meta(wd)
  tok = init_checkpoint.tokenizer_of(wd, meta)
  data = text_datasets.load_text("kjv", seq_len, "mlm", tokenizer=tok,
                                 max_eval=max_eval)
  model = models_lib.build("transformer", tok.vocab_size, meta["dim"] / 128,
                           meta["layers"], vocab_size=tok.vocab_size,
                           heads=meta["heads"], max_len=meta["max_len"],
                           norm=meta["norm"], output="mlm")
  params = checkpoint.load_tree(f"{wd}/{init_checkpoint.PARAMS}")["params"]
  task = pretrain.mlm_task(data)
  x, y = task.prepare(jax.random.key(0), jnp.asarray(data.test_x), None)
  logits = jax.jit(lambda p, t: model.apply({"params": p}, t))(params, x)
  y = np.asarray(y)
  sel = y >= 0
  hit = (np.asarray(jnp.argmax(logits, -1)) == y) & sel
  w = byte_lengths(tok)[np.where(sel, y, 0)] * sel
  return {"token_acc": float(hit.sum() / sel.sum()),
          "byte_acc": float((hit * w).sum() / w.sum()),
          "bytes_per_token": float(w.sum() / sel.sum()),
          "masked_tokens": int(sel.sum()), "vocab": int(tok.vocab_size)}


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--merges", type=int, default=1000)
  ap.add_argument("--max_eval", type=int, default=256)
  args = ap.parse_args()
  rows = []
  for name in ("bytes", "bpe"):
    cfg = config_lib.default_config()
    p = cfg.pretrain
    p.tokenizer, p.bpe_merges, p.downstream = name, args.merges, ""
    p.steps, p.eval_every, p.max_eval = args.steps, args.steps, args.max_eval
    p.warmup_steps = min(p.warmup_steps, args.steps // 10)
    with tempfile.TemporaryDirectory() as wd:
      t = time.time()
      tok_data = text_datasets.load_text("kjv", p.seq_len, "mlm",
                                         tokenizer=name,
                                         bpe_merges=args.merges)
      tokenize_s = time.time() - t
      del tok_data
      t = time.time()
      summary = pretrain.run(cfg, wd, progress=False)
      wall = time.time() - t
      stage_s = summary.timings_s["pretrain"] - tokenize_s
      row = {"tokenizer": name, "steps": args.steps, "seq_len": p.seq_len,
             "tokenize_s": round(tokenize_s, 1),
             "mlm_stage_s": round(stage_s, 1),
             "steps_per_s": round(args.steps / stage_s, 2),
             "wall_s": round(wall, 1),
             "summary_test_acc": summary.mlm["test_accuracy"]["mean"],
             **evaluate(wd, p.seq_len, args.max_eval)}
    rows.append(row)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
