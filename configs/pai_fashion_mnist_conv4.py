"""Pruning at initialization on Conv-4 / Fashion-MNIST (offline, a conv net).

Conv-4 (Frankle & Carbin 2019: 2 x [conv3x3 64, conv3x3 64] ... with
max-pools, FC 256-256, no BatchNorm) on 28x28 Fashion-MNIST. Recipe NOT
tuned on validation (SGD momentum 0.9, lr 0.05, wd 5e-4, cosine, batch
128, 6000 steps = 14 epochs, chosen by analogy with the tuned LeNet
config): re-check the dense optimum with benchmarks/tune_dense.py before
drawing Ma et al.'s conclusions. Convolutions on a 2-core CPU are slow:
meant for an accelerator (`:tiny` runs anywhere).

  jaxticket pai --config configs/pai_fashion_mnist_conv4.py
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.data.name = "fashion_mnist"
  c.model.name = "conv4"
  c.train.optimizer = "sgd"
  c.train.lr = 0.05
  c.train.momentum = 0.9
  c.train.weight_decay = 5e-4
  c.train.schedule = "cosine"
  c.train.batch_size = 128
  c.train.steps = 6000
  c.train.eval_every = 1000
  c.seeds = 2
  c.pai.densities = (0.2, 0.05, 0.01, 0.002)
  c.pai.seeds = 2
  return sized(c, arg, tiny_width=0.125)
