"""ReplicaAxis: names for the positions on the replica axis."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket.core.replicas import ReplicaAxis, concat


def test_row_major_order_matches_index_arithmetic():
  lrs, seeds = (0.03, 0.1, 0.3), (0, 1)
  axis = ReplicaAxis.of(lr=lrs, seed=seeds)
  assert axis.size == 6 and axis.shape == (3, 2)
  for j, lr in enumerate(lrs):  # lr-major: replica j * S + i
    np.testing.assert_array_equal(axis.index(lr=lr), [2 * j, 2 * j + 1])
  assert axis.values("seed") == [0, 1, 0, 1, 0, 1]
  assert axis.labels()[3] == {"lr": 0.1, "seed": 1}
  np.testing.assert_array_equal(axis.index(lr=0.3, seed=0), [4])


def test_outer_groups_and_take():
  axis = ReplicaAxis.of(lr=(0.1, 0.2), seed=(7, 8, 9)).outer(
      "setting", ("ticket", "shuffle"))
  assert axis.names == ["setting", "lr", "seed"] and axis.size == 12
  groups = axis.groups("setting")
  np.testing.assert_array_equal(groups["shuffle"], np.arange(6, 12))
  tree = {"w": jnp.arange(12), "none": None}
  got = axis.select(tree, setting="shuffle", lr=0.2)
  np.testing.assert_array_equal(got["w"], [9, 10, 11])
  assert got["none"] is None
  both = concat([axis.take(tree, groups["ticket"]),
                 axis.take(tree, groups["shuffle"])])
  np.testing.assert_array_equal(both["w"], np.arange(12))


def test_bad_factor_names_are_refused():
  axis = ReplicaAxis.of(k=(0, 25), child=(1, 2))
  with pytest.raises(KeyError, match="factors are"):
    axis.index(seed=0)
  with pytest.raises(ValueError, match="distinct"):
    ReplicaAxis((("a", (1,)), ("a", (2,))))
