"""ResNet-20 on CIFAR-10 with the recipe of Ma et al. (2021) / OpenLTH.

See jaxticket.config.ma2021_cifar for the recipe. lr 0.1 is the best dense
LR in Ma et al.'s grid (0.001-0.15; 92.3% dense test accuracy), so the dense
baseline is well trained; re-check it on your hardware with
benchmarks/tune_dense.py. For accelerators: about 0.5 s per step on a 2-core
CPU (an epoch ~3 min).
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  return sized(ma2021_cifar("resnet20"), arg, tiny_width=0.25)
