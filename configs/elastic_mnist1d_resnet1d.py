"""Elastic tickets on ResNet-1D / MNIST-1D (offline): the ticket of a
3-blocks-per-stage net squeezed to 2 blocks and stretched to 5 (Chen et
al. 2021's ResNet-32 -> ResNet-20 / ResNet-56, in miniature).

The recipe of configs/mnist1d_resnet1d.py (SGD momentum 0.9, lr 0.3,
cosine, wd 5e-4, batch 128, width 0.5) at 500 steps, 2 seeds, IMP to
level 4 (41% density; levels 2 and 4 carried). ``model.depth`` of resnet1d
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
  c.train.steps = 500
  c.train.eval_every = 250
  c.imp.levels = 4
  c.seeds = 2
  c.elastic.source_depth = 3
  c.elastic.target_depths = (2, 5)
  c.elastic.levels = (2, 4)
  c.sanity.levels = (2, 4)  # within imp.levels
  c.lmc.alphas = 11
  c.lmc.bn_batches = 5
  c.lmc.train_examples = 2000
  if arg == "tiny":
    c.elastic.target_depths = (2,)
  return sized(c, arg, tiny_width=0.125)
