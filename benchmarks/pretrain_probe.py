"""Why fine-tuning from the pretrain checkpoint learns little (issue 17,
item 3): yardsticks and linear probes on the downstream tasks' windows.

Per task (the same byte-token windows the classifier sees, so the same
truncation):

* the majority class and the share of texts the window keeps whole;
* TF-IDF logistic regression (sklearn) on word 1-2-grams and char 1-4-grams
  of the windows decoded back to text: what a bag of n-grams gets;
* linear probes: logistic regression on standardized features of the
  frozen encoder's final (normed) states, at [CLS] and as the mean over the
  non-padding tokens, from the checkpoint and from a random init of the
  same encoder. MLM never masks nor predicts [CLS], so only the mean can
  carry what pre-training learned.

  python benchmarks/pretrain_probe.py --checkpoint runs/bert \
      [--tasks kjv:256,kjv:0,rotten_tomatoes:0,austen:0] [--austen-dir DIR]
      [--skip-probes]

Measured numbers: docs/tuning.md ("pretrain: why fine-tuning learns
nothing"). Needs scikit-learn (a test extra).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from jaxticket import models as models_lib
from jaxticket.data import text_datasets
from jaxticket.experiments import init_checkpoint


def ngram_accuracy(train, y_train, test, y_test, analyzer, ngrams) -> float:
  vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=2,
                        sublinear_tf=True)
  clf = LogisticRegression(max_iter=2000, C=10.0)
  clf.fit(vec.fit_transform(train), y_train)
  return float((clf.predict(vec.transform(test)) == y_test).mean())


def probe_accuracy(f_train, y_train, f_test, y_test) -> float:
  scale = StandardScaler().fit(f_train)
  clf = LogisticRegression(max_iter=3000, C=1.0)
  clf.fit(scale.transform(f_train), y_train)
  return float((clf.predict(scale.transform(f_test)) == y_test).mean())


def encoder_features(model, params, x, batch=1024):
  """([CLS] state, mean over non-padding tokens) of the final norm."""
  @jax.jit
  def one(xb):
    _, state = model.apply({"params": params}, xb,
                           capture_intermediates=True)
    h = state["intermediates"]["final_norm"]["__call__"][0]
    keep = (xb != 0).astype(h.dtype)[..., None]
    return h[:, 0], (h * keep).sum(1) / keep.sum(1)
  parts = [one(x[i:i + batch]) for i in range(0, len(x), batch)]
  return [np.concatenate([np.asarray(p[j]) for p in parts]) for j in (0, 1)]


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--checkpoint", default="runs/bert")
  ap.add_argument("--tasks", default="kjv:256,kjv:512,kjv:0,"
                  "rotten_tomatoes:0,austen:0",
                  help="NAME:MAX_TRAIN,... (0 = every training text)")
  ap.add_argument("--seq-len", type=int, default=64)
  ap.add_argument("--austen-dir", default=None,
                  help="janeaustenr's data folder if not installed")
  ap.add_argument("--skip-probes", action="store_true")
  args = ap.parse_args()
  tok = None if args.skip_probes else init_checkpoint.tokenizer_of(
      args.checkpoint)
  for item in args.tasks.split(","):
    name, max_train = item.split(":")
    t0 = time.time()
    d = text_datasets.load_text(
        name, args.seq_len, "classification", max_train=int(max_train),
        tokenizer=tok,
        local_dir=args.austen_dir if name == "austen" else None)
    train = [d.tok.decode(x) for x in d.train_x]
    test = [d.tok.decode(x) for x in d.test_x]
    whole = float(np.mean([(x != 0).sum() - 2 < args.seq_len - 2
                           for x in d.train_x]))
    out = {"majority": np.bincount(d.test_y).max() / len(d.test_y),
           "untruncated": whole,
           "words": ngram_accuracy(train, d.train_y, test, d.test_y,
                                   "word", (1, 2)),
           "chars": ngram_accuracy(train, d.train_y, test, d.test_y,
                                   "char_wb", (1, 4))}
    if not args.skip_probes:
      model = models_lib.build(
          "transformer", d.num_classes, 1.0, 2, vocab_size=d.vocab_size,
          heads=4, mlp_ratio=4, max_len=args.seq_len, norm="pre",
          output="classify")
      rand = jax.tree.map(np.asarray, model.init(
          jax.random.key(0), d.train_x[:2])["params"])
      ckpt, _ = init_checkpoint.load_into(args.checkpoint, rand,
                                          d.tokenizer, d.vocab_size)
      for tag, params in (("checkpoint", ckpt), ("random", rand)):
        tr = encoder_features(model, params, d.train_x)
        te = encoder_features(model, params, d.test_x)
        for j, pool in enumerate(("cls", "mean")):
          out[f"{tag}_{pool}"] = probe_accuracy(tr[j], d.train_y, te[j],
                                                d.test_y)
    shown = " ".join(f"{k}={100 * v:.1f}" for k, v in out.items())
    print(f"{name} max_train={max_train} n_train={len(d.train_y)}: {shown} "
          f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
  main()
