"""ResNet-32 at width 2 on CIFAR-10 (Ma et al. 2021's redundant network).

Recipe: jaxticket.config.ma2021_cifar (160 epochs, batch 64, SGD momentum 0.9,
wd 5e-4, LR /10 at epochs 80 and 120; IMP 20%/round, 14 rounds, global), LR
grid 0.001-0.15. lr 0.1 for `imp`/`train`; re-check the dense optimum on your
hardware with benchmarks/tune_dense.py. For accelerators.
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  c = ma2021_cifar("resnet32")
  c.model.width = 2.0
  return sized(c, arg, tiny_width=0.125)
