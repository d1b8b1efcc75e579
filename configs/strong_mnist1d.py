"""Strong lottery tickets on MNIST-1D (offline, minutes on a 2-core CPU).

Edge-popup (Ramanujan et al. 2020) on LeNet-300-100-shaped random MLPs at
widths 0.5, 1, 2 keeping k = 10, 30, 50% of the weights per layer, and the
structured variant keeping k% of each hidden layer's units; 2 seeds; SGD on
the scores at lr 0.1 (the paper's), cosine, momentum 0.9, weight decay
1e-4 on the scores; 2000 steps like the dense recipe. References: the dense
net (the tuned default recipe: lr 0.3, wd 5e-4) at every width and IMP to 4
levels (density 41%) at width 1. Construction: a bias-free 40-16-10 target
approximated by random subset sum, n = 4..24 (weights) and 4..1024
(units), 3 random networks each. Measured wall time: see README
("Strong lottery tickets").

  jaxticket strong --config configs/strong_mnist1d.py
  jaxticket strong --config configs/strong_mnist1d.py:tiny   # seconds
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.strong.seeds = 2
  c.strong.widths = (0.5, 1.0, 2.0)
  c.strong.keep = (0.1, 0.3, 0.5)
  c.strong.rules = ("layerwise", "units")
  c.strong.imp_levels = 4
  return sized(c, arg, tiny_width=0.25)
