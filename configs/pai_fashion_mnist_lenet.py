"""Pruning at initialization on LeNet-300-100 / Fashion-MNIST (offline).

The dense recipe of configs/fashion_mnist_lenet.py (tuned on validation:
SGD momentum 0.9, lr 0.05, wd 1e-3, cosine, 10000 steps, 89.8% dense test)
for every mask; pai defaults (random, magnitude, SNIP, GraSP, SynFlow with
100 rounds, Su et al.'s random ticket; densities 20% to 0.2%; 2 seeds;
every check). Several hundred LeNet replicas of 10000 steps: an hour or
more on a 2-core CPU, minutes on an accelerator.

  jaxticket pai --config configs/pai_fashion_mnist_lenet.py
  jaxticket pai --config configs/pai_fashion_mnist_lenet.py:tiny
"""

import os

from jaxticket.config import load


def get_config(arg=None):
  here = os.path.dirname(os.path.abspath(__file__))
  c = load(os.path.join(here, "fashion_mnist_lenet.py") +
           (f":{arg}" if arg else ""))
  if not arg:
    c.pai.densities = (0.2, 0.05, 0.01, 0.002)
    c.pai.seeds = 2
  return c
