"""Strong lottery tickets on Fashion-MNIST (real 28x28 images, offline from
Debian's dataset-fashion-mnist or data.dir; see jaxticket.data.load).

Edge-popup on LeNet-300-100-shaped random MLPs at widths 1, 2, 4 (the
paper's FC setting on MNIST, Ramanujan et al. 2020 Fig. 3), k = 10, 30,
50%; the structured variant at the same k of units; 3 seeds; scores by SGD
lr 0.1, cosine, momentum 0.9, weight decay 1e-4; 10000 steps (24 epochs).
References: the dense net (configs/fashion_mnist_lenet.py's tuned recipe:
lr 0.05, wd 1e-3) at every width and IMP to 5 levels at width 1.
Construction: a bias-free 784-16-10 target. Not run on the development
VM in full (estimated tens of minutes on 2 cores); `:tiny` runs in seconds.

  jaxticket strong --config configs/strong_fashion_mnist.py
  jaxticket strong --config configs/strong_fashion_mnist.py:tiny
"""

from jaxticket.config import sized

import importlib.util
import os


def _fashion():
  path = os.path.join(os.path.dirname(__file__), "fashion_mnist_lenet.py")
  spec = importlib.util.spec_from_file_location("fashion_mnist_lenet", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config(arg=None):
  c = _fashion()
  c.strong.seeds = 3
  c.strong.widths = (1.0, 2.0, 4.0)
  c.strong.keep = (0.1, 0.3, 0.5)
  c.strong.imp_levels = 5
  c.strong.factors = (4, 8, 12, 16)
  c.strong.unit_factors = (4, 16, 64)
  return sized(c, arg, tiny_width=0.25)
