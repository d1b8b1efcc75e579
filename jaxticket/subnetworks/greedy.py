"""Greedy forward selection of units (Ye, Gong, Nie, Zhou, Klivans, Liu,
ICML 2020, "Good subnetworks provably exist: pruning via greedy forward
selection").

A hidden layer with N units feeds the next layer ``z = sum_j a_j w_j + b``
(a_j the unit's ReLU activation, w_j its outgoing weights). A subnetwork
keeps a set S and *averages*: ``z_S = N / |S| * sum_{j in S} a_j w_j + b``,
the uniform average of the units' contributions N a_j w_j (their Eq. for
the pruned layer: a convex combination, built by Frank-Wolfe steps of size
1 / (n + 1)); with S = all units it is the full layer exactly. Greedy
forward selection starts from the empty set and adds, one unit at a time,
the candidate (of ``candidates`` sampled among the unselected, 50 in the
authors' code) whose addition gives the lowest minibatch loss; it stops
when the training accuracy is within ``tolerance`` (relative, 2% in their
code) of the full network's. Layers are pruned one after another, each
followed by a short fine-tune of the whole subnetwork (done by the
experiment with the platform's Trainer).

Baselines on the same footing (same averaging): ``l1`` keeps the units with
the largest L1 norm of their incoming weights (Li et al. 2017's filter
norm), ``random`` a uniformly random set, whose loss gap is the Monte-Carlo
O(1/n) that Ye et al. improve on.

Rates (what the report's reference slopes mean). Ye et al. analyse one
hidden layer feeding a linear output, f = (1/N) sum_j sigma(x; theta_j),
with a loss convex in f: the uniform average of a growing set is a
Frank-Wolfe method with step 1/n over the convex hull of the N neurons,
which gives a loss gap O(1/n) in general, the order of a random n-subset
(Monte Carlo) and of gradient descent on an n-neuron network in mean-field
analyses; their faster rate for greedy selection is O(1/n^2), for a
sufficiently over-parameterized (large N) network. Their repository's
figure ``fig/toyrate.png`` (loss vs neurons, log-log, pruned vs trained
from scratch) has slopes -1.87 vs -0.80 by a pixel fit. The paper's full
text is not in the stored corpora this was checked against (only the
abstract, the README and the code), so no theorem number is cited. In an
MLP with two hidden layers only the last one is this setting; for the
first, the layers above make the loss non-convex in the averaged layer and
no rate applies. The O(.) constants grow with the squared diameter of the
hull, N times the largest unit contribution: for a confident network (small
training loss, large logits) the gaps at small n are far from any rate,
and greedy's one-step-optimal unit is then a nearly silent one.

We follow the authors' code (lushleaf/Network-Pruning-Greedy-Forward-
Selection, ``mobile2_prune.py``) for the sampling of candidates, selection
without replacement, the 1/(n+1) step and the relative accuracy tolerance,
and the paper for the loss gap it analyses. NumPy on explicit weight
matrices of an MLP (kernels (in, out), biases), for one network.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

METHODS = ("greedy", "l1", "random")


@dataclasses.dataclass
class Mlp:
  """A ReLU MLP: ``kernels[i]`` (in, out), ``biases[i]``; ReLU after every
  layer but the last."""
  kernels: list[np.ndarray]
  biases: list[np.ndarray]

  @property
  def hidden(self) -> list[int]:
    return [k.shape[1] for k in self.kernels[:-1]]


def activations(net: Mlp, x: np.ndarray, layer: int) -> np.ndarray:
  """ReLU activations of hidden ``layer`` (0-based) for inputs x."""
  h = x
  for i in range(layer + 1):
    h = np.maximum(h @ net.kernels[i] + net.biases[i], 0.0)
  return h


def forward_from(net: Mlp, layer: int, z: np.ndarray) -> np.ndarray:
  """Logits from the pre-activation ``z`` of layer ``layer + 1`` (leading
  axes of z are kept, e.g. candidates x batch)."""
  last = len(net.kernels) - 1
  for i in range(layer + 1, last + 1):
    if i > layer + 1:
      z = z @ net.kernels[i] + net.biases[i]
    if i < last:
      z = np.maximum(z, 0.0)
  return z


def averaged_input(net: Mlp, layer: int, act: np.ndarray,
                   scale: np.ndarray) -> np.ndarray:
  """Pre-activation of layer ``layer + 1`` with unit j of ``layer``
  multiplied by ``scale[..., j]`` (N/|S| on S, 0 elsewhere; all ones =
  the full layer)."""
  return (act * scale[..., None, :]) @ net.kernels[layer + 1] + \
      net.biases[layer + 1]


def subset_scale(n_units: int, selected: np.ndarray | list[int]) -> np.ndarray:
  """The uniform-average scale: N / |S| on S, 0 elsewhere."""
  scale = np.zeros(n_units)
  selected = np.asarray(selected, int)
  if selected.size:
    scale[selected] = n_units / selected.size
  return scale


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Mean softmax cross-entropy over the last-but-one axis (batch)."""
  z = logits - logits.max(-1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  return -np.take_along_axis(logp, y[..., None], -1)[..., 0].mean(-1)


def evaluate(net: Mlp, layer: int, scale: np.ndarray, act: np.ndarray,
             y: np.ndarray) -> tuple[float, float]:
  """(loss, accuracy) of the network with layer ``layer`` scaled."""
  logits = forward_from(net, layer, averaged_input(net, layer, act, scale))
  return float(cross_entropy(logits, y)), float(
      np.mean(np.argmax(logits, -1) == y))


@dataclasses.dataclass
class Path:
  """Units in the order a method adds them, with the loss / accuracy on
  the evaluation data after each addition (index n-1: n units; NaN where
  not recorded)."""
  order: list[int]
  loss: list[float]
  accuracy: list[float]


class _Running:
  """The evaluation data's pre-activation of layer ``layer + 1`` as a
  running sum over the selected units, so that adding a unit costs one
  outer product and reading the n-unit subnetwork one forward pass of the
  layers above."""

  def __init__(self, net: Mlp, layer: int, x: np.ndarray, y: np.ndarray):
    self.net, self.layer, self.y = net, layer, y
    self.act = activations(net, x, layer)
    self.total = np.zeros((len(y), net.kernels[layer + 1].shape[1]))
    self.count = 0

  def add(self, unit: int) -> None:
    self.total += np.outer(self.act[:, unit], self.net.kernels[self.layer +
                                                                 1][unit])
    self.count += 1

  def read(self) -> tuple[float, float]:
    n_units = self.act.shape[1]
    z = self.total * (n_units / self.count) + self.net.biases[self.layer + 1]
    logits = forward_from(self.net, self.layer, z)
    return float(cross_entropy(logits, self.y)), float(
        np.mean(np.argmax(logits, -1) == self.y))


def greedy_path(net: Mlp, layer: int, batches: Iterator[tuple[np.ndarray,
                                                               np.ndarray]],
                eval_x: np.ndarray, eval_y: np.ndarray, rng: np.random.Generator,
                candidates: int = 50, max_units: int | None = None,
                stop_accuracy: float | None = None) -> Path:
  """Greedy forward selection in hidden ``layer`` (others intact): each
  step samples up to ``candidates`` unselected units, adds the one whose
  uniform average gives the lowest loss on the next minibatch, and records
  the evaluation loss/accuracy. Stops at ``max_units`` or once the
  evaluation accuracy reaches ``stop_accuracy``."""
  n_units = net.kernels[layer].shape[1]
  max_units = n_units if max_units is None else min(max_units, n_units)
  running = _Running(net, layer, eval_x, eval_y)
  w_next = net.kernels[layer + 1]
  path = Path([], [], [])
  free = np.ones(n_units, bool)
  while len(path.order) < max_units:
    x, y = next(batches)
    act = activations(net, x, layer)
    cand = rng.permutation(np.flatnonzero(free))[:candidates]
    m = len(path.order) + 1
    chosen = act[:, path.order] @ w_next[path.order]  # (B, d)
    z = (chosen[None] + act.T[cand][:, :, None] * w_next[cand][:, None, :]
         ) * (n_units / m) + net.biases[layer + 1]  # (C, B, d)
    losses = cross_entropy(forward_from(net, layer, z),
                           np.broadcast_to(y, (len(cand), len(y))))
    best = int(cand[int(np.argmin(losses))])
    free[best] = False
    running.add(best)
    loss, acc = running.read()
    path.order.append(best)
    path.loss.append(loss)
    path.accuracy.append(acc)
    if stop_accuracy is not None and acc >= stop_accuracy:
      break
  return path


def ranked_path(net: Mlp, layer: int, method: str, eval_x: np.ndarray,
                eval_y: np.ndarray, rng: np.random.Generator,
                max_units: int | None = None) -> Path:
  """The ``l1`` or ``random`` order of units and the evaluation loss /
  accuracy of the uniform average over its first n units, n = 1 ..
  ``max_units``."""
  n_units = net.kernels[layer].shape[1]
  max_units = n_units if max_units is None else min(max_units, n_units)
  if method == "l1":
    order = np.argsort(-np.abs(net.kernels[layer]).sum(0), kind="stable")
  elif method == "random":
    order = rng.permutation(n_units)
  else:
    raise ValueError(f"Unknown selection {method!r}; choose one of "
                     f"{', '.join(METHODS)}.")
  running = _Running(net, layer, eval_x, eval_y)
  path = Path([int(i) for i in order], [], [])
  for unit in order[:max_units]:
    running.add(int(unit))
    loss, acc = running.read()
    path.loss.append(loss)
    path.accuracy.append(acc)
  return path


def prune_layer(net: Mlp, layer: int, selected: list[int] | np.ndarray
                ) -> Mlp:
  """The narrower MLP that computes the uniform average over ``selected``
  units of ``layer``: their columns kept, the next layer's rows kept and
  multiplied by N/|S| (so the pruned net equals the averaged one)."""
  selected = np.sort(np.asarray(selected, int))
  n_units = net.kernels[layer].shape[1]
  kernels = [k.copy() for k in net.kernels]
  biases = [b.copy() for b in net.biases]
  kernels[layer] = kernels[layer][:, selected]
  biases[layer] = biases[layer][selected]
  kernels[layer + 1] = kernels[layer + 1][selected] * (n_units / len(selected))
  return Mlp(kernels, biases)


def logits(net: Mlp, x: np.ndarray) -> np.ndarray:
  """The MLP's outputs."""
  h = x
  for i, (k, b) in enumerate(zip(net.kernels, net.biases)):
    h = h @ k + b
    if i < len(net.kernels) - 1:
      h = np.maximum(h, 0.0)
  return h


def minibatches(x: np.ndarray, y: np.ndarray, batch_size: int,
                rng: np.random.Generator
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Endless minibatches of shuffled epochs."""
  while True:
    order = rng.permutation(len(y))
    for i in range(0, len(y) - batch_size + 1, batch_size):
      idx = order[i:i + batch_size]
      yield x[idx], y[idx]


__all__ = ["Mlp", "Path", "METHODS", "activations", "forward_from",
           "averaged_input", "subset_scale", "cross_entropy", "evaluate",
           "greedy_path", "ranked_path", "prune_layer", "logits",
           "minibatches"]
