"""The RigL paper's MNIST MLP setting, on Fashion-MNIST, for `jaxticket dst`.

Evci et al. (ICML 2020), Sec. 4 / App. (google-research/rigl,
``rigl/mnist/mnist_train_eval.py``): a 300-100 fully connected net
(``lenet_300_100``), 98% sparsity, mask updates every 100 steps (Delta T)
with drop fraction alpha = 0.3 cosine-decayed to 0 at step 50000, Nesterov
momentum 0.9 at lr 0.2, L2 1e-4, batch 100, 200 epochs with the LR divided
by 3 at epochs 60, 70 and 80. The data is Fashion-MNIST (offline here;
MNIST itself is not): 54000 training examples after the validation split,
540 steps per epoch, 108000 steps.

What differs from the paper, and why:
- 98% sparsity is that of the prunable hidden layers; the output layer is
  dense (their layer-3 sparsity is 0: ``masks.prunable`` excludes ``head``),
  with ERK layer densities (their MNIST script sets layer 2 to 0.9 x 98%).
- The IMP ticket reaches 2% density in 6 levels of 47.9% each
  (0.521^6 = 0.02); its levels (and prune-and-fine-tune's) train the same
  108000 steps each, so ticket and fine-tuning cost 7 trainings.
- GMP/GraNet prune from 25.6% to 59.7% of training (the rigl_tf2 MLP
  schedule, steps 3000 -> 7000 of 11719).

Time (estimated from the default's 0.23 ms per replica-step on 2 cores):
two IMP runs of 7 x 108000 steps x 3 seeds, then the dst program (11
methods x 3 seeds): roughly 45 minutes on a 2-core CPU, minutes on a GPU.

  jaxticket dst --config configs/dst_fashion_mnist_mlp.py
  jaxticket dst --config configs/dst_fashion_mnist_mlp.py:tiny   # seconds
"""

from jaxticket.config import default_config, sized

EPOCH = 540  # 54000 training examples / batch 100


def get_config(arg=None):
  c = default_config()
  c.data.name = "fashion_mnist"
  c.model.name = "lenet_300_100"
  c.masks.prunable = r"^Dense_\d+/kernel$"  # the output layer stays dense
  c.train.optimizer = "sgd"
  c.train.lr = 0.2
  c.train.momentum = 0.9
  c.train.nesterov = True
  c.train.weight_decay = 1e-4
  c.train.schedule = "step"
  c.train.milestones = (60 / 200, 70 / 200, 80 / 200)
  c.train.gamma = 1 / 3
  c.train.batch_size = 100
  c.train.steps = 200 * EPOCH
  c.train.eval_every = 10 * EPOCH
  c.checkpoint.every_steps = 10 * EPOCH
  c.seeds = 3
  c.imp.levels = 6
  c.sanity.levels = (2, 4, 6)
  c.imp.prune_fraction = 1 - 0.02 ** (1 / 6)
  c.imp.output_prune_fraction = -1.0  # head not prunable: one group
  c.dst.levels = (6,)
  c.dst.update_every = 100
  c.dst.drop_fraction = 0.3
  c.dst.end_fraction = 50000 / c.train.steps
  c.dst.prune_start_fraction = 3000 / 11719
  c.dst.prune_end_fraction = 7000 / 11719
  c.dst.distribution = "erk"
  return sized(c, arg, tiny_width=0.25, tiny_batch=20)
