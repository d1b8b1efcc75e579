"""Task-incremental subnetworks on permuted MNIST-1D (offline): 5 tasks
(task 0 the plain data, tasks 1-4 fixed permutations of the 40 input
positions), task id known at test, one shared MLP 40-100-100 with a
multi-head output (10 classes per task). HAT/DSN's learned unit gates
(s_max 400), the same with DSN's data-free replay (``dsn``: 1000
impressions per replayed task, 300 Adam steps at lr 0.01, tau 20 -- the
paper uses 1000, 1500, 0.01, 20 -- then 160 SGD steps at lr 0.05 as in
the reference code), random unit masks of the same size, fine-tuning and
separate nets.

SGD momentum 0.9, lr 0.05 (HAT's lr), no weight decay (it would move the
protected weights), constant LR, batch 64, 2000 steps per task (~36 epochs
of the 3600 training examples), 2 seeds. HAT's lambda 0.25 instead of its
0.75: at 0.75 each task keeps ~24% of the units and the gated method's ACC
was 46.0% (0.25: ~38%, 47.5%; measured at this config, 2 seeds). About
25 s on 2 CPU cores. ``:tiny``: 3 tasks, 16-unit layers, 20 steps per
task.

  jaxticket continual --config configs/continual_mnist1d.py --workdir /tmp/continual
"""

from jaxticket.config import ConfigError, default_config


def get_config(arg=None):
  c = default_config()
  c.data.name = "mnist1d"
  c.seeds = 2
  c.train.optimizer = "sgd"
  c.train.lr = 0.05
  c.train.momentum = 0.9
  c.train.weight_decay = 0.0
  c.train.schedule = "constant"
  c.train.batch_size = 64
  c.train.steps = 2000
  c.train.eval_every = 1000
  c.checkpoint.every_steps = 0
  c.continual.sequence = "permuted"
  c.continual.tasks = 5
  c.continual.widths = (100, 100)
  c.continual.lamb = 0.25
  if arg == "tiny":
    c.continual.tasks = 3
    c.continual.widths = (16, 16)
    c.train.steps = 20
    c.train.eval_every = 10
    c.continual.replay_buffer = 32
    c.continual.replay_synth_steps = 30
    c.continual.replay_steps = 20
  elif arg:
    raise ConfigError(f"Unknown config size {arg!r}; use 'tiny' or nothing.")
  return c
