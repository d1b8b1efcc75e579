"""Pruning at initialization on ResNet-32 / CIFAR-10: GraSP's setting
(alecwangcq/GraSP configs/cifar10/resnet32: stage widths 32/64/128, i.e.
our resnet32 at width 2; batch 128, 160 epochs, SGD momentum 0.9, lr 0.1,
wd 1e-4, LR x0.1 at 50% and 75%; pruning ratios 85% to 99.5%), also Su et
al.'s ResNet-32 setting. SynFlow's flow R of this net is about 2^134 at
initialization: beyond float32 for the reference code, within our exact
rescaling (jaxticket.pruning.scorers.synflow). For accelerators; CIFAR-10
needs tfds data (not offline).

  jaxticket pai --config configs/pai_cifar10_resnet32.py
"""

from jaxticket.config import default_config, sized

EPOCH = 45000 // 128


def get_config(arg=None):
  c = default_config()
  c.data.name = "cifar10"
  c.data.augment = "on"
  c.model.name = "resnet32"
  c.model.width = 2.0
  c.train.optimizer = "sgd"
  c.train.lr = 0.1
  c.train.momentum = 0.9
  c.train.weight_decay = 1e-4
  c.train.schedule = "step"
  c.train.milestones = (0.5, 0.75)
  c.train.gamma = 0.1
  c.train.batch_size = 128
  c.train.steps = 160 * EPOCH
  c.train.eval_every = 10 * EPOCH
  c.checkpoint.every_steps = 10 * EPOCH
  c.seeds = 3
  c.imp.output_prune_fraction = 0.0
  c.pai.densities = (0.15, 0.1, 0.05, 0.02, 0.01, 0.005, 0.001)
  c.pai.seeds = 3
  c.pai.chunk = 64  # replicas per program (memory)
  return sized(c, arg, tiny_width=0.125)
