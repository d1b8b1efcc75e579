"""IMP (and pai, dst, sanity) on a 2-layer GCN over a homophilous
contextual SBM (issue 20): a graph node-classification set through
``data.load``, its examples node indices, the graph the model's context.

Kernels are pruned (``masks.prunable``), the GCN's ``edges`` never (edge
tickets are ``jaxticket graph``'s). Full-batch training: the batch is the
training nodes (``graph.train_fraction`` of each class: 60 of the 300
nodes; 12 of 60 at ``:tiny``). Adam at 0.01 as Kipf & Welling train GCN.

  jaxticket imp --config configs/sbm_gcn.py
  jaxticket imp --config configs/sbm_gcn.py:tiny
  jaxticket imp --config configs/sbm_gcn.py --config.data.name=karate --config.train.batch_size=6
"""

from jaxticket.config import default_config


def get_config(arg=None):
  c = default_config(arg)
  c.data.name = "sbm_homophilous"
  c.model.name = "gcn"
  c.train.optimizer = "adam"
  c.train.lr = 0.01
  c.train.schedule = "constant"
  c.train.warmup_steps = 0
  c.train.weight_decay = 5e-4
  c.train.batch_size = 12 if arg == "tiny" else 60
  # the GCN head is head/dense/kernel (GraphSAGE: head/{neighbors,self})
  c.masks.output_layer = r"(^|/)head/(dense|neighbors|self)/kernel$"
  if not arg:
    c.train.steps = 200
    c.train.eval_every = 20
  return c
