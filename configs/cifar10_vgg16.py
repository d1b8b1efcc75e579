"""VGG-16 (CIFAR variant with BatchNorm) on CIFAR-10, Ma et al. (2021) recipe.

160 epochs, batch 64, SGD momentum 0.9, weight decay 5e-4, LR /10 at epochs
80 and 120, lr 0.1 (the large-LR regime where Ma et al. find LT and RR
coincide). IMP 20% per round, global magnitude, output layer not pruned.
"""

from jaxticket.config import default_config, shrink


def get_config(arg=None):
  c = default_config()
  c.data.name = "cifar10"
  c.data.augment = "on"
  c.model.name = "vgg16"
  c.train.optimizer = "sgd"
  c.train.lr = 0.1
  c.train.momentum = 0.9
  c.train.weight_decay = 5e-4
  c.train.schedule = "step"
  c.train.milestones = (0.5, 0.75)
  c.train.batch_size = 64
  c.train.steps = 160 * 703
  c.train.eval_every = 703 * 4
  c.imp.levels = 14
  c.imp.output_prune_fraction = 0.0
  c.seeds = 3
  if arg == "tiny":
    shrink(c, steps=4, levels=1, seeds=2, width=0.125)
    c.train.batch_size = 8
  elif arg:
    raise ValueError(f"Unknown size {arg!r}; use 'tiny' or nothing.")
  return c
