"""ResNet-20 on CIFAR-10, the Ma et al. (2021) / OpenLTH recipe.

160 epochs, batch 64 (Ma et al.) -> 781 steps/epoch of the 45000 training
examples left after the validation split; SGD momentum 0.9, weight decay
5e-4, LR divided by 10 at epochs 80 and 120. lr 0.1 is the best dense LR in
Ma et al.'s grid (0.001-0.15; 92.3% dense test accuracy); sweep it with
`jaxticket sweep`/benchmarks/tune_dense.py on your hardware. IMP: 20% of the
remaining weights per round, global magnitude, output layer not pruned
(OpenLTH ignores fc.weight), 14 rounds. For accelerators: about 0.5 s per
step on a 2-core CPU.
"""

from jaxticket.config import default_config, shrink


def get_config(arg=None):
  c = default_config()
  c.data.name = "cifar10"
  c.data.augment = "on"
  c.model.name = "resnet20"
  c.train.optimizer = "sgd"
  c.train.lr = 0.1
  c.train.momentum = 0.9
  c.train.weight_decay = 5e-4
  c.train.schedule = "step"
  c.train.milestones = (0.5, 0.75)
  c.train.gamma = 0.1
  c.train.batch_size = 64
  c.train.steps = 160 * 703  # 45000 // 64 = 703 steps per epoch
  c.train.eval_every = 703 * 4
  c.imp.levels = 14
  c.imp.prune_fraction = 0.2
  c.imp.output_prune_fraction = 0.0
  c.imp.strategy = "global"
  c.seeds = 3
  if arg == "tiny":
    shrink(c, steps=4, levels=1, seeds=2, width=0.25)
    c.train.batch_size = 8
  elif arg:
    raise ValueError(f"Unknown size {arg!r}; use 'tiny' or nothing.")
  return c
