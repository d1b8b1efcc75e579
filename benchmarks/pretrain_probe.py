"""Linear probes of a pretrain checkpoint (issue 17 item 3): logistic
regression (sklearn, standardized features) on the frozen encoder's final
states, [CLS] vs the mean over non-padding tokens, checkpoint vs a random
init of the same encoder; whether MLM put task signal where the classifier
reads.

  python benchmarks/pretrain_probe.py   (~11 min on 2 shared cores)

CK: a pretrain workdir (default encoder); AUS: janeaustenr's data folder.
"""
import time, sys, numpy as np, jax, jax.numpy as jnp
from jaxticket.data import text_datasets
from jaxticket.experiments import init_checkpoint
from jaxticket import models as models_lib
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
AUS="/tmp/austen/x/usr/lib/R/site-library/janeaustenr/data"
CK = sys.argv[1] if len(sys.argv) > 1 else "runs/bert"
tok = init_checkpoint.tokenizer_of(CK)
def feats(model, params, x):
  @jax.jit
  def f(xb):
    _, st = model.apply({"params": params}, xb, capture_intermediates=True)
    h = st["intermediates"]["final_norm"]["__call__"][0]
    keep = (xb != 0).astype(h.dtype)[..., None]
    mean = (h * keep).sum(1) / keep.sum(1)
    return h[:, 0], mean
  outs = [f(x[i:i+1024]) for i in range(0, len(x), 1024)]
  return [np.concatenate([np.asarray(o[j]) for o in outs]) for j in range(2)]
def probe(Ftr, ytr, Fte, yte):
  s = StandardScaler().fit(Ftr)
  clf = LogisticRegression(max_iter=3000, C=1.0).fit(s.transform(Ftr), ytr)
  return (clf.predict(s.transform(Fte)) == yte).mean()
for name, mt in [("kjv",256),("kjv",512),("kjv",0),("rotten_tomatoes",0),("austen",0)]:
  t = time.time()
  d = text_datasets.load_text(name, 64, "classification", max_train=mt, tokenizer=tok, local_dir=AUS if name=="austen" else None)
  model = models_lib.build("transformer", d.num_classes, 1.0, 2, vocab_size=d.vocab_size, heads=4, mlp_ratio=4, max_len=64, norm="pre", output="classify")
  rnd = model.init(jax.random.key(0), d.train_x[:2])["params"]
  rnd = jax.tree.map(np.asarray, rnd)
  pt, loaded = init_checkpoint.load_into(CK, rnd, d.tokenizer, d.vocab_size)
  res = {}
  for tag, p in (("ckpt", pt), ("random", rnd)):
    ctr, mtr = feats(model, p, d.train_x); cte, mte = feats(model, p, d.test_x)
    res[tag+"_cls"] = probe(ctr, d.train_y, cte, d.test_y)
    res[tag+"_mean"] = probe(mtr, d.train_y, mte, d.test_y)
  maj = np.bincount(d.test_y).max()/len(d.test_y)
  print(f"{name} max_train={mt} loaded={len(loaded)} maj={maj:.3f} " + " ".join(f"{k}={v:.3f}" for k,v in res.items()) + f" ({time.time()-t:.0f}s)", flush=True)
