"""The benchmark lottery on LeNet-300-100 (offline): IMP ticket, random,
SNIP, GraSP, SynFlow, SET and RigL on MNIST-1D, digits and Fashion-MNIST.

Densities 50%, 25%, 12.5% (IMP at 50% per level), 2 seeds, 600 steps per
net, the dense LR per dataset picked on validation from 0.03 / 0.1 / 0.3.

  jaxticket benchmark --config configs/benchmark.py
  jaxticket benchmark --config configs/benchmark.py:tiny
"""

from jaxticket.config import default_config


def get_config(arg=None):
  c = default_config(arg)
  if not arg:
    c.seeds = 2
    c.train.steps = 600
    c.train.eval_every = 300
  return c
