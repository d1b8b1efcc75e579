"""Yardsticks for the pretrain downstream tasks (issue 17 item 3): TF-IDF
logistic regression (sklearn) on word 1-2-grams and char 1-4-grams of the
SAME texts the classifier sees (the token windows decoded back, so the same
truncation), and how many texts survive the window untruncated.

  python benchmarks/pretrain_yardsticks.py   (~3 min; sklearn needed)

AUS: a folder with janeaustenr's Rdata.rdb (edit for your machine).
"""
import time, sys, numpy as np
AUS="/tmp/austen/x/usr/lib/R/site-library/janeaustenr/data"
from jaxticket.data import text_datasets
from jaxticket.data import text_builders
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
def fit(tr, ytr, te, yte, analyzer, ngram):
  v = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram, min_df=2, sublinear_tf=True)
  Xtr = v.fit_transform(tr); Xte = v.transform(te)
  clf = LogisticRegression(max_iter=2000, C=10.0).fit(Xtr, ytr)
  return (clf.predict(Xte) == yte).mean()
for name, L, mt in [("kjv",64,256),("kjv",64,512),("kjv",64,0),("rotten_tomatoes",64,0),("rotten_tomatoes",128,0),("rotten_tomatoes",256,0),("austen",64,0),("austen",256,0)]:
  t=time.time()
  d = text_datasets.load_text(name, L, "classification", max_train=mt, local_dir=AUS if name=="austen" else None)
  tok = d.tok
  tr = [tok.decode(x) for x in d.train_x]; te = [tok.decode(x) for x in d.test_x]
  ytr, yte = d.train_y, d.test_y
  # survival of truncation
  lens = np.array([ (x!=0).sum()-2 for x in d.train_x])
  maj = np.bincount(yte).max()/len(yte)
  full_frac = (lens < L-2).mean()
  r = dict(word=fit(tr,ytr,te,yte,"word",(1,2)), char=fit(tr,ytr,te,yte,"char_wb",(1,4)))
  print(f"{name} L={L} max_train={mt} ntr={len(ytr)} nte={len(yte)} classes={d.num_classes} train_counts={np.bincount(ytr).tolist()} maj={maj:.3f} untruncated={full_frac:.2f} word={r['word']:.3f} char={r['char']:.3f} ({time.time()-t:.0f}s)", flush=True)
