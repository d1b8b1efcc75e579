"""CNN-1D on MNIST-1D (3 conv layers of 32 channels, kernel 5, stride 2): a
plain (no residual) conv net for the redundancy question (``model.width``).

Dense recipe tuned on the validation split (docs/tuning.md, "mnist1d_cnn1d";
benchmarks/tune_dense.py): SGD momentum 0.9, batch 128, cosine, lr 0.3,
weight decay 5e-4, 4000 steps (142 epochs of the 3600 training examples):
95.3 ± 0.7% val, 95.4 ± 0.4% test over 6 seeds, in line with the ~94% the
MNIST-1D paper (Greydanus 2020) reports for its CNN. Adam (the paper's
optimizer) peaked at 90.5% (lr 0.01); lr 0.1 gave 92-93%, 8000 steps no
gain; at lr 0.3 wd 1e-4 a seed diverged, wd 5e-4 was stable. The old recipe
(lr 0.1, 1000 steps: ~91.5%) was under-trained for Ma et al.'s condition 5.
``sanity.lrs`` spans 0.03 to the tuned 0.3. IMP 8 levels; every control at
levels 5 and 8, 3 seeds per LR (more where a verdict is inconclusive).

  jaxticket study --config configs/mnist1d_cnn1d.py --factor model.width=0.5,1,2
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.model.name = "cnn1d"
  c.train.lr = 0.3
  c.train.weight_decay = 5e-4
  c.train.steps = 4000
  c.train.eval_every = 1000
  c.imp.levels = 8
  c.seeds = 3
  c.sanity.lrs = (0.03, 0.1, 0.3)
  c.sanity.levels = (5, 8)
  c.sanity.seeds = 3
  return sized(c, arg, tiny_width=0.125)
