"""Pruning at initialization on VGG-19 / CIFAR-10: GraSP's setting
(alecwangcq/GraSP configs/cifar10/vgg19: batch 128, 160 epochs, SGD
momentum 0.9, lr 0.1, wd 5e-4, LR x0.1 at 50% and 75% of training; pruning
ratios 90/95/98%), also Su et al.'s VGG-19 setting, plus SynFlow's extreme
compressions (1%, 0.1%). Our VGG-19 is the CIFAR variant with BatchNorm and
global pooling. For accelerators; CIFAR-10 needs tfds data (not offline).
An epoch is 351 steps of the 45000 examples left after the validation
split (45000 // 128).

  jaxticket pai --config configs/pai_cifar10_vgg19.py
"""

from jaxticket.config import default_config, sized

EPOCH = 45000 // 128


def get_config(arg=None):
  c = default_config()
  c.data.name = "cifar10"
  c.data.augment = "on"
  c.model.name = "vgg19"
  c.train.optimizer = "sgd"
  c.train.lr = 0.1
  c.train.momentum = 0.9
  c.train.weight_decay = 5e-4
  c.train.schedule = "step"
  c.train.milestones = (0.5, 0.75)
  c.train.gamma = 0.1
  c.train.batch_size = 128
  c.train.steps = 160 * EPOCH
  c.train.eval_every = 10 * EPOCH
  c.checkpoint.every_steps = 10 * EPOCH
  c.seeds = 3
  c.imp.output_prune_fraction = 0.0
  c.pai.densities = (0.1, 0.05, 0.02, 0.01, 0.001)
  c.pai.seeds = 3
  c.pai.chunk = 64  # replicas per program (memory)
  return sized(c, arg, tiny_width=0.125)
