"""LeNet-300-100 on MNIST-1D: the embedded default (offline, minutes on a CPU).

Recipe and how it was tuned: see jaxticket.config.default_config and
docs/tuning.md.

  jaxticket imp --config configs/mnist1d_lenet.py
  jaxticket imp --config configs/mnist1d_lenet.py:tiny   # seconds, for tests
"""

from jaxticket.config import default_config


def get_config(arg=None):
  return default_config(arg)
