"""LeNet-300-100 on MNIST (Frankle & Carbin 2019, Figure 3 setting).

Needs the MNIST download through tensorflow-datasets (network). Recipe:
Frankle & Carbin's Adam lr 1.2e-3, batch 60, 50k iterations; we use
OpenLTH's mnist_lenet_300_100 recipe: plain SGD without momentum, lr 0.1,
batch 128, 40 epochs, which reaches the higher dense accuracy in OpenLTH's
reported runs (~98%).
Not re-tuned here (no MNIST offline); run benchmarks/tune_dense.py on a
machine with the data before trusting tickets from it.
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.data.name = "mnist"
  c.model.name = "lenet_300_100"
  c.train.optimizer = "sgd"
  c.train.lr = 0.1
  c.train.momentum = 0.0  # OpenLTH's mnist_lenet_300_100 uses no momentum
  c.train.weight_decay = 0.0
  c.train.schedule = "constant"
  c.train.batch_size = 128
  c.train.steps = 40 * 422  # 40 epochs of the 54000 training examples
  c.train.eval_every = 1000
  c.imp.levels = 15
  c.imp.output_prune_fraction = 0.1
  c.seeds = 4
  return sized(c, arg, tiny_width=0.25)
