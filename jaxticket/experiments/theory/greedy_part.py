"""The greedy part of ``jaxticket theory``: Ye et al.'s greedy forward
selection (:mod:`jaxticket.subnetworks.greedy`) on a trained MLP.

1. The wide network is trained dense (an ``imp`` sub-run with 0 levels,
   ``WORKDIR/dense``, ``theory.seeds`` seeds).
2. Loss gap vs size, per hidden layer (the others intact): the training
   loss of the uniform average over n units minus the full network's, for
   n = 1 .. ``theory.greedy.max_units``, for greedy selection, L1-norm unit
   ranking and random selection (``random_draws`` draws averaged).
3. Pruning: layer after layer, greedy selection until the training
   accuracy is within ``tolerance`` of the full net's, then a fine-tune of
   the whole subnetwork (``finetune_steps``, constant ``finetune_lr``); L1
   and random selection at the same widths, fine-tuned the same way (the
   three as one 3-replica program of the platform's Trainer per layer).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket import data as data_lib
from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.stats import stats
from jaxticket.core.workdir import Workdir
from jaxticket.experiments import registry
from jaxticket.subnetworks import greedy

PyTree = Any


def train_wide(cfg: ml_collections.ConfigDict, wd: Workdir,
               progress: bool) -> list[greedy.Mlp]:
  """The trained dense MLP of every seed (an ``imp`` sub-run, 0 levels)."""
  sub = cfg.copy_and_resolve_references()
  sub.imp.levels = 0
  sub.seeds = cfg.theory.seeds
  imp = registry.load("imp")
  path = wd.file("dense")
  imp.run(sub, path, command="train", progress=progress)
  params = jax.device_get(imp.load_level(path, 0)["params"])
  return [to_mlp(params, r) for r in range(cfg.theory.seeds)]


def to_mlp(params: PyTree, replica: int) -> greedy.Mlp:
  """Replica ``replica`` of stacked MLP params as a :class:`greedy.Mlp`."""
  names = sorted((k for k in params if k.startswith("Dense_")),
                 key=lambda k: int(k.split("_")[1])) + ["head"]
  return greedy.Mlp(
      [np.asarray(params[n]["kernel"][replica], np.float64) for n in names],
      [np.asarray(params[n]["bias"][replica], np.float64) for n in names])


def to_params(net: greedy.Mlp) -> dict:
  """A :class:`greedy.Mlp` as (unstacked) MLP params."""
  names = [f"Dense_{i}" for i in range(len(net.kernels) - 1)] + ["head"]
  return {n: {"kernel": np.asarray(k, np.float32),
              "bias": np.asarray(b, np.float32)}
          for n, k, b in zip(names, net.kernels, net.biases)}


def flat_inputs(data: data_lib.Dataset, x: np.ndarray) -> np.ndarray:
  return np.asarray(data.normalize(x), np.float64).reshape(len(x), -1)


def accuracy(net: greedy.Mlp, x: np.ndarray, y: np.ndarray) -> float:
  return float(np.mean(np.argmax(greedy.logits(net, x), -1) == y))


def loss_gap_curves(cfg: ml_collections.ConfigDict, nets: list[greedy.Mlp],
                    ex: np.ndarray, ey: np.ndarray, tx: np.ndarray,
                    ty: np.ndarray) -> list[dict]:
  """Per hidden layer and method: the mean (over seeds) training-loss gap
  and test accuracy of the n-unit uniform average, n = 1 .. max."""
  g = cfg.theory.greedy
  out = []
  for layer in range(len(nets[0].kernels) - 1):
    n_units = nets[0].kernels[layer].shape[1]
    top = min(g.max_units or n_units, n_units)
    gaps = {m: [] for m in greedy.METHODS}
    full_losses = []
    for seed, net in enumerate(nets):
      rng = np.random.default_rng(cfg.seed * 1000 + 17 * seed + layer)
      full = greedy.evaluate(net, layer, np.ones(n_units),
                             greedy.activations(net, ex, layer), ey)[0]
      full_losses.append(full)
      batches = greedy.minibatches(tx, ty, cfg.train.batch_size, rng)
      path = greedy.greedy_path(net, layer, batches, ex, ey, rng,
                                g.candidates, top)
      gaps["greedy"].append(np.asarray(path.loss) - full)
      gaps["l1"].append(np.asarray(greedy.ranked_path(
          net, layer, "l1", ex, ey, rng, top).loss) - full)
      draws = [greedy.ranked_path(net, layer, "random", ex, ey, rng, top).loss
               for _ in range(g.random_draws)]
      gaps["random"].append(np.mean(draws, axis=0) - full)
    row = {"layer": layer, "units": n_units, "sizes": list(range(1, top + 1)),
           "full_loss": float(np.mean(full_losses))}
    for m, values in gaps.items():
      mean = np.mean(values, axis=0)
      row[m] = {"gap": mean.tolist(),
                "slope": fit_slope(np.arange(1, top + 1), mean, n_units)}
    out.append(row)
  return out


def fit_slope(n: np.ndarray, gap: np.ndarray, units: int | None = None
              ) -> float | None:
  """Least-squares slope of log(gap) on log(n) for 2 <= n <= N/4 where
  the gap is positive: the theory's rates are for N -> infinity, and near
  n = N every method's gap falls to 0 (n = N is the full layer). None with
  fewer than 3 points."""
  units = int(n[-1]) if units is None else units
  sel = (gap > 0) & (n >= 2) & (n <= max(units / 4, 3))
  if sel.sum() < 3:
    return None
  return float(np.polyfit(np.log(n[sel]), np.log(gap[sel]), 1)[0])


def finetune(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
             nets: list[greedy.Mlp], key_seed: int) -> list[greedy.Mlp]:
  """Fine-tune equally shaped MLPs together (one program, a replica each)
  for ``theory.greedy.finetune_steps`` at constant ``finetune_lr``."""
  g = cfg.theory.greedy
  if g.finetune_steps == 0:
    return nets
  model = models_lib.MLP(tuple(nets[0].hidden), data.num_classes)
  recipe = dataclasses.replace(config_lib.recipe(cfg, data.augment),
                               steps=g.finetune_steps, schedule="constant",
                               warmup_steps=0)
  prog = step_lib.Program(model=model, task=tasks.get(data.task),
                          recipe=recipe, normalize=data.normalize,
                          prunable=cfg.masks.prunable)
  trainer = loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                             shard=False)
  r = len(nets)
  state = trainer.init(loop_lib.replica_keys([key_seed] * r))
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs),
                         *[to_params(n) for n in nets])
  state = trainer.restart(state.replace(params=stacked))
  hp = optim.stack_hparams([g.finetune_lr] * r,
                           [cfg.train.weight_decay] * r)
  state, _ = trainer.run(state, hp, g.finetune_steps)
  params = jax.device_get(state.params)
  return [to_mlp(params, i) for i in range(r)]


def prune_pipeline(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
                   nets: list[greedy.Mlp], ex: np.ndarray, ey: np.ndarray,
                   tx: np.ndarray, ty: np.ndarray, test_x: np.ndarray,
                   test_y: np.ndarray) -> dict:
  """Greedy pruning of every hidden layer to the tolerance, with L1 and
  random selection at the same widths; rows per (seed, layer).

  As the authors' code (``prune_a_layer``): layers in forward order, each
  on the network its earlier layers were pruned and fine-tuned into, and
  each layer's tolerance relative to that network's training accuracy
  before the layer is pruned (not the original network's)."""
  g = cfg.theory.greedy
  rows = []
  for seed, net in enumerate(nets):
    rng = np.random.default_rng(cfg.seed * 1000 + 7 * seed + 5)
    current = {m: net for m in greedy.METHODS}
    for layer in range(len(net.kernels) - 1):
      n_units = current["greedy"].kernels[layer].shape[1]
      start_acc = accuracy(current["greedy"], ex, ey)
      path = greedy.greedy_path(
          current["greedy"], layer,
          greedy.minibatches(tx, ty, cfg.train.batch_size, rng), ex, ey, rng,
          g.candidates, None, stop_accuracy=(1 - g.tolerance) * start_acc)
      keep = len(path.order)
      chosen = {"greedy": path.order,
                "l1": np.argsort(-np.abs(current["l1"].kernels[layer]).sum(0),
                                 kind="stable")[:keep],
                "random": rng.permutation(n_units)[:keep]}
      pruned = {m: greedy.prune_layer(current[m], layer, chosen[m])
                for m in greedy.METHODS}
      before = {m: accuracy(pruned[m], test_x, test_y) for m in pruned}
      tuned = finetune(cfg, data, [pruned[m] for m in greedy.METHODS],
                       cfg.seed + seed)
      current = dict(zip(greedy.METHODS, tuned))
      rows.append({
          "seed": seed, "layer": layer, "units": n_units, "kept": keep,
          "widths": list(current["greedy"].hidden),
          "train_accuracy_before": start_acc,
          "full_test_accuracy": accuracy(net, test_x, test_y),
          "before_finetune": before,
          "after_finetune": {m: accuracy(current[m], test_x, test_y)
                             for m in current}})
  summary = []
  for layer in range(len(nets[0].kernels) - 1):
    at = [r for r in rows if r["layer"] == layer]
    summary.append({
        "layer": layer, "units": at[0]["units"],
        "kept": stats([r["kept"] for r in at]),
        **{f"{m}_{when}": stats([r[when][m] for r in at])
           for m in greedy.METHODS
           for when in ("before_finetune", "after_finetune")}})
  return {"rows": rows, "layers": summary,
          "full_test_accuracy": stats([r["full_test_accuracy"] for r in rows
                                       if r["layer"] == 0])}


def run(cfg: ml_collections.ConfigDict, wd: Workdir, data: data_lib.Dataset,
        progress: bool) -> dict:
  """The greedy part's results (curves and pruning)."""
  g = cfg.theory.greedy
  nets = train_wide(cfg, wd, progress)
  tx = flat_inputs(data, data.train_x)
  ty = np.asarray(data.train_y)
  order = np.random.default_rng(cfg.seed).permutation(len(ty))
  pick = order[:min(g.eval_examples, len(ty))]
  ex, ey = tx[pick], ty[pick]
  test_x, test_y = flat_inputs(data, data.test_x), np.asarray(data.test_y)
  curves = loss_gap_curves(cfg, nets, ex, ey, tx, ty)
  pruning = prune_pipeline(cfg, data, nets, ex, ey, tx, ty, test_x, test_y)
  return {"curves": curves, "pruning": pruning,
          "hidden": list(nets[0].hidden), "seeds": cfg.theory.seeds}


__all__ = ["run", "train_wide", "loss_gap_curves", "prune_pipeline",
           "finetune", "fit_slope", "to_mlp", "to_params"]
