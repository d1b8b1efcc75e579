"""Elastic tickets on CIFAR-10: ResNet-32 -> ResNet-20 / ResNet-56 (Chen et al.'s main CIFAR-10 setting; the
even strategy gives their mapping 0:0;1:1,2;2:3,4;3:5,6;4:7,8 for 56).

Recipe of Ma et al. (2021) / OpenLTH (jaxticket.config.ma2021_cifar: 160
epochs, batch 64, SGD momentum 0.9, lr 0.1 /10 at epochs 80 and 120, wd
5e-4, crop+flip; block convolutions pruned, 20% per level, global); IMP
to level 9 (13% density) on the source and on every target, levels 3, 6,
9 carried. model.depth is the total depth 6n+2. For accelerators: CIFAR-10
needs tfds data (not offline); one program per target holds 4 methods x 3
levels x 3 seeds = 36 replicas.

  jaxticket elastic --config configs/elastic_cifar10_resnet32.py --workdir /tmp/elastic_c32
"""

from jaxticket.config import ma2021_cifar, sized


def get_config(arg=None):
  c = ma2021_cifar("resnet32")
  c.model.depth = 32
  c.imp.levels = 9
  c.elastic.source_depth = 32
  c.elastic.target_depths = (20, 56)
  c.elastic.levels = (3, 6, 9)
  c.sanity.levels = (3, 6, 9)  # within imp.levels (the recipe checks 14)
  c.lmc.train_examples = 10000
  return sized(c, arg, tiny_width=0.25)
