"""MobileNet-v1 (CIFAR variant, stride-1 stem) on CIFAR-10, Ma et al. (2021).

Recipe: jaxticket.config.ma2021_cifar; LR grid 0.001-0.1. Depthwise kernels
are prunable like every other kernel. For accelerators.
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  return sized(ma2021_cifar("mobilenet_v1"), arg, tiny_width=0.125)
