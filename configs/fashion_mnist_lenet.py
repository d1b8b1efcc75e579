"""LeNet-300-100 on Fashion-MNIST: real 28x28 images, offline.

Data: the four IDX files from ``data.dir``, else Debian's
``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``), else
tfds's download (see jaxticket.data.load).

Dense recipe (Ma et al.'s well-trained dense net), tuned on the validation
split with benchmarks/tune_dense.py (docs/tuning.md, "fashion_mnist_lenet"):
SGD momentum 0.9, batch 128, cosine decay, lr 0.05, weight decay 1e-3,
10000 steps (24 epochs of the 54000 training examples): 90.1% val, 89.8%
test over 4 seeds, in line with published LeNet-300-100 results (88-90%).
lr 0.1 / wd 5e-4 is within noise of it; lr >= 0.2 diverges for some seeds;
5000 steps is 0.2-0.35 points worse. IMP: 12 levels of 20% (density 6.9%,
output layer at 10%), 3 seeds: 13 trainings of 3 replicas, about 5 minutes
on a 2-core CPU (levels 0-1 took 46 s). ``sanity.lrs`` spans 0.01 to the
largest stable LR; ``sanity`` (IMP at 3 LRs x 3 seeds, then every control at
3 sparsities) is several times that, roughly 40 minutes (estimated).

  jaxticket imp --config configs/fashion_mnist_lenet.py
  jaxticket imp --config configs/fashion_mnist_lenet.py:tiny   # seconds
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.data.name = "fashion_mnist"
  c.model.name = "lenet_300_100"
  c.train.optimizer = "sgd"
  c.train.lr = 0.05
  c.train.momentum = 0.9
  c.train.weight_decay = 1e-3
  c.train.schedule = "cosine"
  c.train.batch_size = 128
  c.train.steps = 10000
  c.train.eval_every = 1000
  c.imp.levels = 12
  c.imp.prune_fraction = 0.2
  c.imp.output_prune_fraction = 0.1
  c.seeds = 3
  c.sanity.lrs = (0.01, 0.05, 0.1)
  c.sanity.levels = (5, 8, 12)
  c.sanity.seeds = 3
  return sized(c, arg, tiny_width=0.25)
