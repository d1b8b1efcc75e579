"""VGG-16 (CIFAR variant with BatchNorm) on CIFAR-10, Ma et al. (2021) recipe.

See jaxticket.config.ma2021_cifar. lr 0.1 is the large-LR regime where Ma et
al. find the ticket and its random re-initialization coincide; their grid for
VGG-16 is 0.001-0.1.
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  return sized(ma2021_cifar("vgg16"), arg, tiny_width=0.125)
