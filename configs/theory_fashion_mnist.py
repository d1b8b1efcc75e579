"""Greedy forward selection on LeNet-300-100 trained on Fashion-MNIST
(configs/fashion_mnist_lenet.py's tuned recipe: 89.8% dense test), 3
seeds; with the same teacher-student grid as configs/theory_mnist1d.py at
d = 50 (r = 2, 5, 10, 25, 50; N up to 1280). Not run in full on the
development VM (estimated 10-20 minutes on 2 cores).

  jaxticket theory --config configs/theory_fashion_mnist.py
  jaxticket theory --config configs/theory_fashion_mnist.py:tiny
"""

import importlib.util
import os

from jaxticket.config import sized


def get_config(arg=None):
  path = os.path.join(os.path.dirname(__file__), "fashion_mnist_lenet.py")
  spec = importlib.util.spec_from_file_location("fashion_mnist_lenet", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  c.theory.seeds = 3
  c.theory.greedy.eval_examples = 5000
  t = c.theory.teacher
  t.dim = 50
  t.kept = (2, 5, 10, 25, 50)
  t.samples = (10, 20, 40, 80, 160, 320, 640, 1280)
  return sized(c, arg, tiny_width=0.1)
