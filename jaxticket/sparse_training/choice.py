"""Several mask updaters on one replica axis: replica r runs the updater
its state names.

Methods of one shape (static training, SET, RigL, GMP, GraNet, ...) then
train as ONE compiled program: the choice is per-replica *data*
(``state["which"]``), not program structure. Under ``jax.vmap`` the
``lax.switch`` over the choice computes every updater's update for every
replica at an update tick and selects per replica (a cost paid only at
ticks; ``benchmarks/dst_overhead.py`` measures it). Each updater keeps its
own state and acts only on its own ticks: the ``Choice`` ticks whenever
any of them does, and a replica whose updater has no tick keeps its mask
and state.

Per-replica targets (e.g. GMP's ``final_counts``, GraNet's
``final_count``) are fields of the updaters' states, set after ``init`` by
:func:`assign`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jaxticket.core.updater import MaskUpdater, is_static

PyTree = Any


def _select(flag: jax.Array, a: PyTree, b: PyTree) -> PyTree:
  return jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)


@dataclasses.dataclass(frozen=True)
class Choice:
  """Replica r runs ``updaters[state["which"]]``."""
  updaters: tuple

  def __post_init__(self):
    if not self.updaters:
      raise ValueError("Choice needs at least one updater.")

  @property
  def static(self) -> bool:
    return all(is_static(u) for u in self.updaters)

  def init(self, params: PyTree, mask: PyTree) -> PyTree:
    return {"which": jnp.zeros((), jnp.int32),
            "states": tuple(u.init(params, mask) for u in self.updaters)}

  def is_update_step(self, step: jax.Array) -> jax.Array:
    ticks = [u.is_update_step(step) for u in self.updaters
             if not is_static(u)]
    out = jnp.zeros_like(step, bool)
    for t in ticks:
      out = out | t
    return out

  def update(self, step, params, grads, mask, state, key):
    states = state["states"]

    def branch(i: int):
      u = self.updaters[i]

      def run():
        if is_static(u):
          return mask, states
        new_mask, new_state = u.update(step, params, grads, mask, states[i],
                                       key)
        now = u.is_update_step(step)
        new_mask = _select(now, new_mask, mask)
        new_state = _select(now, new_state, states[i])
        return new_mask, states[:i] + (new_state,) + states[i + 1:]
      return run

    new_mask, new_states = jax.lax.switch(
        jnp.clip(state["which"], 0, len(self.updaters) - 1),
        [branch(i) for i in range(len(self.updaters))])
    return new_mask, {"which": state["which"], "states": new_states}


def assign(state: PyTree, which: jax.Array | None = None,
           **fields: jax.Array) -> PyTree:
  """A (stacked) Choice state with ``which`` replaced and every dict entry
  named like a keyword in ``fields`` (at any depth of the updaters' states)
  replaced by that value (e.g. ``final_count=counts[R]``)."""

  def walk(node):
    if isinstance(node, dict):
      return {k: (jnp.asarray(fields[k], jnp.asarray(v).dtype).reshape(
          jnp.shape(v)) if k in fields else walk(v)) for k, v in node.items()}
    if isinstance(node, tuple):
      return tuple(walk(x) for x in node)
    return node

  out = {"which": state["which"], "states": walk(state["states"])}
  if which is not None:
    out["which"] = jnp.asarray(which, jnp.int32).reshape(
        jnp.shape(state["which"]))
  return out


def chosen(stacked: Sequence[PyTree], which: Any) -> list:
  """Per replica r, ``stacked[which[r]]``'s entry r (host arrays): read
  each replica's own updater state out of a stacked Choice state."""
  import numpy as np
  which = np.asarray(which)
  host = [jax.tree.map(np.asarray, s) for s in stacked]
  return [jax.tree.map(lambda x: x[r], host[int(w)])
          for r, w in enumerate(which)]


__all__ = ["Choice", "assign", "chosen", "MaskUpdater"]
