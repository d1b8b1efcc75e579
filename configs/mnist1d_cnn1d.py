"""CNN-1D on MNIST-1D (3 conv layers of 32 channels, kernel 5, stride 2): a
plain (no residual) conv net for the redundancy question (``model.width``).

1000 steps (36 epochs), batch 128, SGD momentum 0.9, cosine, wd 5e-4; LR
chosen on validation with benchmarks/tune_dense.py (docs/tuning.md). IMP 8
levels; every control at levels 5 and 8, 3 seeds per LR.

  jaxticket study --config configs/mnist1d_cnn1d.py --factor model.width=0.5,1,2
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.model.name = "cnn1d"
  c.train.lr = 0.1
  c.train.steps = 1000
  c.train.eval_every = 500
  c.imp.levels = 8
  c.seeds = 3
  c.sanity.lrs = (0.01, 0.03, 0.1)
  c.sanity.levels = (5, 8)
  c.sanity.seeds = 3
  return sized(c, arg, tiny_width=0.125)
