"""``jaxticket strong``: subnetworks of random networks that work without
any weight training, found (edge-popup) or built (random subset sum).

Edge-popup (Ramanujan et al., CVPR 2020): every kernel of a random network
is frozen (signed Kaiming constant by default) and gets a score; the
forward pass uses the top-k |scores| per layer (straight-through backward),
and SGD trains the scores only (:mod:`jaxticket.models.supermask`, through
the platform's one step with ``Parametrization.scores()``). The structured
variant keeps the top-k *units* (neurons / filters) of each layer, the
setting of da Cunha, d'Amore & Natale's structured strong tickets. For every
(rule, width) one program trains k x seeds replicas (replicas of one seed
share the random network and the initial scores).

References, trained with the ``train`` section's recipe in sub-runs of
``imp`` (``WORKDIR/reference_w<width>``): the dense network at every width
and, at ``model.width``, IMP tickets down to ``strong.imp_levels`` levels.

Construction (:mod:`jaxticket.subnetworks.subset_sum`): a small trained
target MLP is approximated, without any training, by pruning a random
network about ``n`` times wider (Pensia et al. 2020's weight-wise random
subset sum; a unit-wise, multidimensional subset sum for the structured
case, after da Cunha et al.); its output error, accuracy and sparsity vs n,
next to the subset-sum counting limit (``construction.RATE_TEXT`` states
the papers' bounds).

Resume: each finished program writes ``stages/<name>.json``; a rerun skips
those (an interrupted program restarts from its beginning; the reference
sub-runs resume like ``imp``).
"""

from __future__ import annotations

import time
from typing import Any

import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxticket import config as config_lib
from jaxticket import data as data_lib
from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.core.replicas import ReplicaAxis
from jaxticket.core.stats import stats
from jaxticket.core.workdir import Workdir
from jaxticket.experiments import common, registry
from jaxticket.experiments.stages import Stages
from jaxticket.experiments.strong import construction, report, settings
from jaxticket.experiments.summaries import StrongSummary
from jaxticket.models import supermask

PyTree = Any


def build_model(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
                width: float) -> Any:
  """The registry model of ``cfg.model`` at ``width``."""
  return models_lib.build(cfg.model.name, data.num_classes, width,
                          cfg.model.depth or None, cfg.model.residual,
                          input_shape=data.input_shape)


def supermask_model(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
                    rule: str, width: float) -> supermask.Supermask:
  """A supermask over the config's model: kernels of ``masks.prunable`` get
  scores; the structured rule leaves the output layer (its units are the
  classes) unscored and puts each unit's mask on its outgoing weights where
  the model is a chain (:func:`supermask.with_unit_links`)."""
  model = supermask.Supermask(
      build_model(cfg, data, width), supermask.make_rule(rule),
      weight_init=cfg.strong.weight_init, scored=cfg.masks.prunable,
      skip=cfg.masks.output_layer if rule == "units" else "",
      scale_fan=cfg.strong.scale_fan)
  return (supermask.with_unit_links(model, data.input_shape)
          if rule == "units" else model)


def supermask_trainer(cfg: ml_collections.ConfigDict, data: data_lib.Dataset,
                      model: supermask.Supermask) -> loop_lib.Trainer:
  """The platform's Trainer with a scores-only parametrization."""
  prog = step_lib.Program(
      model=model, task=tasks.get(data.task),
      recipe=config_lib.recipe(cfg, data.augment), normalize=data.normalize,
      parametrization=Parametrization.scores(
          supermask.projection(model.rule)),
      prunable=cfg.masks.prunable)
  return loop_lib.Trainer(prog, data, replica_loop=cfg.train.replica_loop,
                          shard=cfg.train.shard_replicas)


def layer_shapes(model: supermask.Supermask, input_shape: tuple[int, ...]
                 ) -> list[tuple[str, tuple[int, ...], bool]]:
  """(layer path, kernel shape, scored?) of every kernel in forward order
  (an un-jitted init keeps Flax's creation order; a jitted one sorts)."""
  params = model.init(jax.random.key(0), jnp.zeros((1, *input_shape)))[
      "params"]
  leaves = {"/".join(k): v for k, v in  # flatten_dict keeps creation order
            traverse_util.flatten_dict(dict(params)).items()}
  paths = set(leaves)
  return [(p[:-len("/kernel")], tuple(np.shape(leaves[p])),
           p[:-len("kernel")] + "scores" in paths)
          for p in leaves if p.endswith("/kernel")]


def weight_density(rule: str, shapes: list[tuple[str, tuple, bool]],
                   keep: float) -> dict:
  """Fractions of the kernels' weights a subnetwork uses, from the shapes
  alone (top-k counts are fixed by k): ``nominal`` counts weights whose
  mask is 1; ``effective`` also drops the weights reading a dropped unit of
  the previous layer (a chain estimate: exact for MLPs and plain conv nets,
  approximate with skip connections). ``units``: fraction of the scored
  layers' units kept."""
  total = sum(int(np.prod(s)) for _, s, _ in shapes)
  scored_total = sum(int(np.prod(s)) for _, s, sc in shapes if sc)
  if rule != "units":
    kept = (sum(supermask.kept_count(int(np.prod(s)), keep) if sc else
                int(np.prod(s)) for _, s, sc in shapes)
            if rule == "layerwise" else
            supermask.kept_count(scored_total, keep) + total - scored_total)
    return {"nominal": kept / total, "effective": kept / total, "units": 1.0}
  nominal = effective = 0.0
  alive_in, kept_units, all_units = 1.0, 0, 0
  for _, s, scored in shapes:
    fan, cout = int(np.prod(s[:-1])), s[-1]
    out = supermask.kept_count(cout, keep) if scored else cout
    if scored:
      kept_units, all_units = kept_units + out, all_units + cout
    nominal += fan * out
    effective += fan * out * alive_in
    alive_in = out / cout
  return {"nominal": nominal / total, "effective": effective / total,
          "units": kept_units / max(all_units, 1)}


def edge_popup_stage(cfg: ml_collections.ConfigDict, wd: Workdir,
                     data: data_lib.Dataset, rule: str, width: float,
                     progress: bool) -> list[dict]:
  """Train the scores of one random network shape for k x seeds replicas;
  one row per k."""
  name = f"edge_popup_{rule}_w{width:g}"
  wd.truncate_metrics(lambda row: row.get("stage") != name)
  keeps = [float(k) for k in cfg.strong.keep]
  seeds = [cfg.seed + i for i in range(cfg.strong.seeds)]
  axis = ReplicaAxis.of(keep=keeps, seed=seeds)
  model = supermask_model(cfg, data, rule, width)
  trainer = supermask_trainer(cfg, data, model)
  state = trainer.init(loop_lib.replica_keys(axis.values("seed")))
  state = state.replace(params=supermask.with_keep(state.params,
                                                   axis.values("keep")))
  shapes = layer_shapes(model, data.input_shape)
  dens = {k: weight_density(rule, shapes, k) for k in keeps}
  r = axis.size
  hp = optim.stack_hparams([cfg.strong.lr] * r,
                           [cfg.strong.weight_decay] * r)
  density = np.array([dens[k]["effective"] for k in axis.values("keep")])
  lrs = [float(cfg.strong.lr)] * r
  with tqdm(total=cfg.train.steps, disable=not progress, unit="step",
            desc=f"edge-popup {rule}, width {width:g} (k={keeps})",
            leave=True, dynamic_ncols=True) as bar:
    logger = common.LevelLogger(
        wd, 0, axis.values("seed"), lrs, density, bar,
        extra={"stage": name, "rule": rule, "width": width},
        stop_on_divergence=cfg.train.stop_on_divergence)
    trainer.train(state, hp, cfg.train.steps, cfg.train.eval_every,
                  on_eval=logger, progress=bar)
  ev, ok = logger.last, logger.diverged_at < 0
  rows = []
  for k, idx in axis.groups("keep").items():
    rows.append({
        "rule": rule, "width": float(width), "keep": k,
        "density": dens[k]["effective"],
        "nominal_density": dens[k]["nominal"], "units": dens[k]["units"],
        "test_accuracy": stats(np.asarray(ev.test_accuracy)[idx], ok[idx]),
        "val_accuracy": stats(np.asarray(ev.val_accuracy)[idx], ok[idx]),
        "train_loss": stats(logger.last_loss[idx], ok[idx]),
        "parameters": int(sum(np.prod(sh) for _, sh, _ in shapes)),
    })
  return rows


def reference_stage(cfg: ml_collections.ConfigDict, wd: Workdir,
                    width: float, progress: bool) -> list[dict]:
  """Dense training (and IMP at ``model.width``) at ``width``, as an
  ``imp`` sub-run; rows per IMP level."""
  sub = cfg.copy_and_resolve_references()
  sub.model.width = float(width)
  sub.seeds = cfg.strong.seeds
  sub.imp.levels = (cfg.strong.imp_levels
                    if float(width) == float(cfg.model.width) else 0)
  imp = registry.load("imp")
  summary = imp.run(sub, wd.file(f"reference_w{width:g}"), command="imp",
                    progress=progress)
  return [{"width": float(width), "level": row["level"],
           "density": row["density"], "test_accuracy": row["test_accuracy"],
           "val_accuracy": row["val_accuracy"]} for row in summary.levels]


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> StrongSummary:
  """Run every part of ``strong.parts``; write the run directory."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  wd, done = common.open_run(cfg, workdir, "strong", StrongSummary)
  if done is not None:
    return done
  t0 = time.time()
  stages = Stages(wd)
  data = common.load_data(cfg)
  rows, references, built = [], [], None
  timings = {}
  if "edge_popup" in cfg.strong.parts:
    for rule in cfg.strong.rules:
      for width in cfg.strong.widths:
        name = f"edge_popup_{rule}_w{width:g}"
        t = time.time()
        got = stages.get(name) or stages.put(
            name, edge_popup_stage(cfg, wd, data, rule, width, progress))
        timings[name] = round(time.time() - t, 2)
        rows += got
    for width in cfg.strong.widths:
      name = f"reference_w{width:g}"
      t = time.time()
      references += stages.get(name) or stages.put(
          name, reference_stage(cfg, wd, width, progress))
      timings[name] = round(time.time() - t, 2)
  if "construction" in cfg.strong.parts:
    t = time.time()
    built = stages.get("construction") or stages.put(
        "construction", construction.run(cfg, wd, data, progress))
    timings["construction"] = round(time.time() - t, 2)
  summary = StrongSummary(
      edge_popup=rows, references=references, construction=built,
      keep=[float(k) for k in cfg.strong.keep],
      widths=[float(w) for w in cfg.strong.widths],
      rules=list(cfg.strong.rules),
      seeds=[cfg.seed + i for i in range(cfg.strong.seeds)],
      weight_init=cfg.strong.weight_init, model=cfg.model.name,
      dataset=cfg.data.name, timings_s=timings,
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(StrongSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> StrongSummary:
  """``jaxticket strong``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: StrongSummary) -> str:
  return report.console_text(summary)
