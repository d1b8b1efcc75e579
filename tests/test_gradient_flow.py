"""Trainer.gradient_flow against the closed form of a linear least-squares
model: the masked gradient's norm on a fixed batch and the distance from an
anchor, per replica, compiled once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from tests.test_core import Linear, regression_data


def test_gradient_flow_matches_the_closed_form():
  data = regression_data()
  recipe = optim.Recipe(steps=1, batch_size=64, optimizer="sgd")
  prog = step_lib.Program(Linear(2), tasks.get("regression"), recipe,
                          data.normalize)
  tr = loop_lib.Trainer(prog, data)
  state = tr.init(loop_lib.replica_keys([0, 1]))
  rng = np.random.default_rng(0)
  keep = rng.random((2, 5, 2)) < 0.5
  state = state.replace(mask={"head": {"kernel": jnp.asarray(keep),
                                       "bias": None}})
  anchor = jax.tree.map(lambda p: p + 0.5, state.params)
  x, y = data.train_x[:100], data.train_y[:100]
  flow = jax.device_get(tr.gradient_flow(state, anchor, jnp.asarray(x),
                                         jnp.asarray(y)))
  for r in range(2):
    w = np.asarray(state.params["head"]["kernel"][r], np.float64)
    b = np.asarray(state.params["head"]["bias"][r], np.float64)
    res = x.astype(np.float64) @ w + b - y
    gw = x.T @ res / len(x) * keep[r]
    gb = res.mean(0)
    want = np.sqrt((gw ** 2).sum() + (gb ** 2).sum())
    assert float(flow.grad_norm[r]) == pytest.approx(want, rel=1e-4)
    assert float(flow.distance[r]) == pytest.approx(0.5 * np.sqrt(12),
                                                    rel=1e-5)
  tr.gradient_flow(state, anchor, jnp.asarray(x), jnp.asarray(y))
  assert tr.traces["gradient_flow"] == 1
