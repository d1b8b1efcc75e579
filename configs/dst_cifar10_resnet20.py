"""`jaxticket dst` on CIFAR-10 ResNet-20 (for accelerators).

The recipe is Ma et al.'s / OpenLTH's (``jaxticket.config.ma2021_cifar``:
160 epochs, batch 64, SGD momentum 0.9, wd 5e-4, LR /10 at epochs 80 and
120; block and downsample convolutions prunable). IMP levels 5 and 10
(density 33% and 11% of the prunable weights) are compared; mask updates
every 100 steps as RigL does on CIFAR (Evci et al. 2020, App. "CIFAR-10"),
drop fraction 0.3 until 75% of training; GMP/GraNet prune during the first
half (GraNet's CIFAR scripts prune until epoch 80 of 160), GraNet's
sparse-to-sparse start at ERK density 0.5 (their scripts). 3 seeds x 11
methods x 2 levels = 66 ResNet-20s in one program, after two IMP runs of
11 trainings x 3 seeds: hours on one GPU.

  jaxticket dst --config configs/dst_cifar10_resnet20.py
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  c = ma2021_cifar("resnet20")
  c.imp.levels = 10
  c.sanity.levels = (5, 10)
  c.dst.levels = (5, 10)
  c.dst.update_every = 100
  c.dst.end_fraction = 0.75
  c.dst.prune_start_fraction = 0.0625  # epoch 10
  c.dst.prune_end_fraction = 0.5  # epoch 80
  c.dst.granet_initial_density = 0.5
  c.dst.eval_every = 4 * 703
  return sized(c, arg, tiny_width=0.25)
