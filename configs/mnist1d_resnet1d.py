"""ResNet-1D on MNIST-1D: the offline model for Ma et al.'s residual-connection
question (``--config.model.residual=false`` removes every skip connection).

Width 0.5 (16/32 channels, 2 blocks per stage), 1000 steps (36 epochs), batch
128, SGD momentum 0.9, cosine, wd 5e-4. LR 0.3 was best on validation
among 0.01-0.3 (98.6% val, 98.9% test; docs/tuning.md); the sanity grid
pairs it with the small LR 0.01. IMP: 8 levels (16.8% density),
output layer at its own rate; the sanity check gives every control at
levels 5 and 8 with 2 seeds per LR, sized to finish in minutes on a CPU.

  jaxticket study --config configs/mnist1d_resnet1d.py --factor model.residual=true,false
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.model.name = "resnet1d"
  c.model.width = 0.5
  c.train.lr = 0.3
  c.train.steps = 1000
  c.train.eval_every = 500
  c.imp.levels = 8
  c.seeds = 2
  c.sanity.lrs = (0.01, 0.3)
  c.sanity.levels = (5, 8)
  c.sanity.seeds = 2
  return sized(c, arg, tiny_width=0.125)
