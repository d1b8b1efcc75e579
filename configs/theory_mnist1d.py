"""Theory checks offline: greedy forward selection on LeNet-300-100 trained
on MNIST-1D (the default dense recipe, 2 seeds), and the teacher-student
phase diagram (d = 20 Gaussian inputs, K = 4 hidden units, r = 2, 5, 10, 20
inputs per unit, N = 10 .. 320 samples, 8 trials, students with the
teacher's mask, a random mask, dense). Minutes on a 2-core CPU (README,
"Theory checks").

  jaxticket theory --config configs/theory_mnist1d.py
  jaxticket theory --config configs/theory_mnist1d.py:tiny   # seconds
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.model.name = "lenet_300_100"
  c.theory.seeds = 2
  return sized(c, arg, tiny_width=0.1)
