"""The construction part of ``jaxticket strong``: a small trained target,
approximated without training by pruning random networks n times wider
(:mod:`jaxticket.subnetworks.subset_sum`), for every n of
``strong.factors`` (weights) / ``strong.unit_factors`` (units) and
``strong.construct_seeds`` random networks each.

The target is a bias-free ReLU MLP (``strong.target_hidden``), the setting
of Pensia et al.'s theorem: the platform trains its kernels with the
``train`` recipe while its biases stay frozen at zero
(``Parametrization(trainable=kernel)``).
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket import data as data_lib
from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.stats import stats
from jaxticket.core.workdir import Workdir
from jaxticket.subnetworks import subset_sum

DESCRIPTION = (
    "A bias-free ReLU target (trained) is approximated by pruning a random "
    "network of twice its depth, n units per target input in every random "
    "block, with U[-s, s] weights (s = max(1, max |w|)), without any "
    "training. `weights` (Pensia et al. 2020): every target weight is an "
    "exact subset sum of n random products (pruning single weights of a "
    "dense random net). `units` (structured, after da Cunha et al.): whole "
    "units of a random net with one input per unit in its first layer of "
    "each pair are kept or dropped, each kept unit's outgoing vector adding "
    "to a row of the target (a multidimensional subset sum; exact up to "
    "2^16 subsets per group, a local search beyond). Output error = "
    "||f_subnet - f_target|| / ||f_target|| on the test inputs; 'weights "
    "kept' counts the random network's weights left after pruning.")


def train_target(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
                 progress: bool) -> tuple[list[np.ndarray], float, str]:
  """(kernels in forward order, test accuracy, description) of the
  trained bias-free target MLP."""
  hidden = tuple(int(h) for h in cfg.strong.target_hidden)
  model = models_lib.MLP(hidden, data.num_classes)
  steps = cfg.strong.target_steps or cfg.train.steps
  recipe = dataclasses.replace(config_lib.recipe(cfg, data.augment),
                               steps=steps,
                               warmup_steps=min(cfg.train.warmup_steps, steps))
  prog = step_lib.Program(
      model=model, task=tasks.get(data.task), recipe=recipe,
      normalize=data.normalize,
      parametrization=Parametrization(trainable=r"(^|/)kernel$"),
      prunable=cfg.masks.prunable)
  trainer = loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                             shard=False)
  state = trainer.init(loop_lib.replica_keys([cfg.seed]))
  hp = optim.stack_hparams([cfg.train.lr], [cfg.train.weight_decay])
  state = trainer.train(state, hp, steps, steps)
  acc = float(np.asarray(trainer.evaluate(state).test_accuracy)[0])
  params = jax.device_get(state.params)
  names = [f"Dense_{i}" for i in range(len(hidden))] + ["head"]
  kernels = [np.asarray(params[n]["kernel"][0], np.float64) for n in names]
  sizes = [kernels[0].shape[0], *hidden, data.num_classes]
  return kernels, acc, "bias-free MLP " + "-".join(map(str, sizes))


def subset_sum_rate(kind: str, n: np.ndarray, d: int) -> tuple[np.ndarray,
                                                                str]:
  """The counting limit of the weight error in n, relative to n's first
  value: with m = n/2 candidates of each sign there are only 2^m subset
  sums, so a typical scalar target is ~2^(-n/2) from the nearest and a
  d-dimensional one ~2^(-n/(2d)) (2^m points cannot cover (1/eps)^d cells).
  No subset sum can decay faster; it is not any paper's theorem.

  The theorems are sufficient conditions with unspecified constants, i.e.
  slower-or-equal decays: Lueker (1998) and Pensia et al. (2020, Thm. 1: a
  random network O(log(d l / min(eps, delta))) times wider than a width-d,
  depth-l target, i.e. n = O(log 1/eps) candidates per target weight) give
  eps = exp(-c n) for some c > 0; in d dimensions Becchetti et al. (2022,
  multidimensional random subset sum, on which da Cunha, d'Amore & Natale
  2023 build their structured, polynomially over-parameterized bound) need
  n = O(d^3 log(1/eps) (log(1/eps) + log d)), an error falling only like
  exp(-c sqrt(n / d^3)). See :data:`RATE_TEXT`."""
  per = 2.0 if kind == "weights" else 2.0 * d
  return 2.0 ** (-(n - n[0]) / per), (
      "counting limit 2^(-n/2)" if kind == "weights" else
      f"counting limit 2^(-n/(2d)), d={d}")


#: The papers' bounds in words (report.md).
RATE_TEXT = (
    "The dotted lines are the counting limit (2^m subset sums of m = n/2 "
    "candidates per sign: no construction decays faster), not a theorem. "
    "The theorems guarantee slower-or-equal decays with unspecified "
    "constants: weights, Pensia et al. 2020 Thm. 1 (after Lueker 1998), "
    "n = O(log 1/eps) per target weight, i.e. eps = exp(-c n); units "
    "(d-dimensional rows), Becchetti et al. 2022's multidimensional subset "
    "sum, n = O(d^3 log(1/eps) (log(1/eps) + log d)), i.e. eps ~ "
    "exp(-c sqrt(n / d^3)), the tool of da Cunha, d'Amore & Natale 2023's "
    "polynomial structured bound.")


def run(cfg: ml_collections.ConfigDict, wd: Workdir, data: data_lib.Dataset,
        progress: bool) -> dict:
  """Train the target, construct every subnetwork, measure them."""
  del wd
  kernels, target_acc, arch = train_target(cfg, data, progress)
  x = np.asarray(data.normalize(data.test_x), np.float64).reshape(
      len(data.test_y), -1)
  y = subset_sum.target_forward(kernels, x)
  target_pred = np.argmax(y, -1)
  rows, rates = [], {}
  d = max(k.shape[1] for k in kernels)
  for kind in cfg.strong.construct:
    factors = cfg.strong.factors if kind == "weights" else \
        cfg.strong.unit_factors
    for n in factors:
      err, werr, acc, agree, dens = [], [], [], [], []
      total = 0
      for s in range(cfg.strong.construct_seeds):
        blocks = subset_sum.construct(kernels, int(n), kind,
                                      seed=cfg.seed * 7919 + 101 * s + n)
        out = subset_sum.network_forward(blocks, x)
        err.append(np.linalg.norm(out - y) / np.linalg.norm(y))
        werr.append(subset_sum.weight_error(blocks, kernels)["mean"])
        pred = np.argmax(out, -1)
        acc.append(np.mean(pred == data.test_y))
        agree.append(np.mean(pred == target_pred))
        dens.append(sum(b.kept for b in blocks) / sum(b.total for b in blocks))
        total = sum(b.total for b in blocks)
      rows.append({"construct": kind, "factor": int(n),
                   "relative_error": stats(err), "weight_error": stats(werr),
                   "test_accuracy": stats(acc), "agreement": stats(agree),
                   "density": stats(dens), "parameters": int(total)})
    ns = np.array([r["factor"] for r in rows if r["construct"] == kind], float)
    errs = np.array([r["weight_error"]["mean"] for r in rows
                     if r["construct"] == kind])
    rel = np.array([r["relative_error"]["mean"] for r in rows
                    if r["construct"] == kind])
    ref, label = subset_sum_rate(kind, ns, d)  # plotted from the first n
    fitted = _halving(ns, errs)
    rates[kind] = {
        "label": label, "reference": (ref * rel[0]).tolist(),
        "weight_error_halves_every": fitted,
        "text": (f"weight error falls from {errs[0]:.3g} (n={ns[0]:g}) to "
                 f"{errs[-1]:.3g} (n={ns[-1]:g}), halving every "
                 f"{fitted:.2g} extra units per input; the "
                 f"{label} halves every "
                 f"{2 if kind == 'weights' else 2 * d} (dotted line, "
                 "anchored at the first point)")
        if fitted is not None else "too few factors to fit a rate"}
  return {"description": DESCRIPTION, "rate_text": RATE_TEXT,
          "target": {"architecture": arch, "test_accuracy": target_acc,
                     "hidden": list(cfg.strong.target_hidden),
                     "max_weight": max(float(np.abs(k).max())
                                       for k in kernels)},
          "rows": rows, "rates": rates}


def _halving(n: np.ndarray, err: np.ndarray) -> float | None:
  """Extra n per halving of ``err`` from a least-squares fit of log2(err)
  on n (None with fewer than 2 points or no decay)."""
  ok = err > 0
  if ok.sum() < 2:
    return None
  slope = np.polyfit(n[ok], np.log2(err[ok]), 1)[0]
  return float(-1.0 / slope) if slope < 0 else None


__all__ = ["run", "train_target", "subset_sum_rate", "DESCRIPTION",
           "RATE_TEXT"]
