"""Elastic tickets on ResNet-1D / MNIST-1D (offline): the ticket of a
3-blocks-per-stage net squeezed to 2 blocks and stretched to 5 (Chen et
al. 2021's ResNet-32 -> ResNet-20 / ResNet-56, in miniature).

The recipe of configs/mnist1d_resnet1d.py (SGD momentum 0.9, lr 0.3,
cosine, wd 5e-4, batch 128, width 0.5) at 300 steps, 2 seeds, IMP to
level 2 (levels 1 and 2 carried: 80% and 64% density), targets of 2 (squeeze) and 4
(stretch) blocks per stage. The earlier default (500 steps, IMP to level 4,
levels 2 and 4, targets 2 and 5) took ~21 min on 2 CPU cores; raise those
for a fuller density sweep. ``model.depth`` of resnet1d
counts residual blocks per stage (2 stages). ``:tiny`` carries to depth 2
only.

  jaxticket elastic --config configs/elastic_mnist1d_resnet1d.py --workdir /tmp/elastic
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.model.name = "resnet1d"
  c.model.width = 0.5
  c.model.depth = 3
  c.train.lr = 0.3
  c.train.steps = 300
  c.train.eval_every = 300
  c.imp.levels = 2
  c.seeds = 2
  c.elastic.source_depth = 3
  c.elastic.target_depths = (2, 4)
  c.elastic.levels = (1, 2)
  c.sanity.levels = (1, 2)  # within imp.levels
  c.lmc.alphas = 11
  c.lmc.bn_batches = 5
  c.lmc.train_examples = 2000
  if arg == "tiny":
    c.elastic.target_depths = (2,)
  return sized(c, arg, tiny_width=0.125)
