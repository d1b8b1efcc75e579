"""Cost of pruning at initialization: scoring every method's masks (all
replicas, vmapped) against training, and SynFlow's rounds as one compiled
program against a Python loop of one-round programs.

  python benchmarks/pai_scoring.py [--config FILE[:SIZE]] [--out F.json]

Measured side by side in one process, warm (best of ``--repeat`` after an
untimed, compiling call) and cold (first call, compilation included):

- ``scoring``: ``pai.all_masks``' work per method and data variant
  (``jaxticket pai``'s stage 1: every density x seed of a method in one
  vmapped program, the corrupted-data variants of SNIP/GraSP included);
- ``training``: one replica trained ``train.steps`` steps (one training
  run), and the whole plan of ``jaxticket pai`` (every mask and check plus
  the dense net, one program) timed for ``--plan-steps`` steps and scaled
  to ``train.steps`` (per-step cost is constant in a scan);
- ``synflow``: ``--rounds`` rounds for the same replicas as one
  ``lax.fori_loop`` (what ``jaxticket pai`` runs) vs a Python loop calling a
  compiled one-round program ``--rounds`` times; the masks must be equal.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import best_time, report, timed  # noqa: E402
from jaxticket import config  # noqa: E402
from jaxticket.core import loop as loop_lib  # noqa: E402
from jaxticket.core import masks as masks_lib  # noqa: E402
from jaxticket.core import optim  # noqa: E402
from jaxticket.experiments import common  # noqa: E402
from jaxticket.experiments.pai import methods, pai  # noqa: E402
from jaxticket.pruning import allocators, rounds, scorers  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="")
  parser.add_argument("--out", default="")
  parser.add_argument("--rounds", type=int, default=100)
  parser.add_argument("--repeat", type=int, default=2)
  parser.add_argument("--plan-steps", type=int, default=200)
  args = parser.parse_args()
  cfg = config.load(args.config)
  cfg.pai.synflow_rounds = args.rounds
  seeds = pai.seeds_of(cfg)
  run_cfg = cfg.copy_and_resolve_references()
  run_cfg.seeds = len(seeds)
  s = common.setup(run_cfg)
  inits = pai.make_inits(s, seeds)
  one = masks_lib.ones(loop_lib.tree_index(inits.scored.params, 0),
                       cfg.masks.prunable)
  paths = pai.forward_order(s, one)
  dens = list(cfg.pai.densities)
  dens_of, _ = pai.densities_of(cfg, dict(zip(pai.leaf_names(one), [
      m.shape for m in jax.tree.leaves(one)])), paths)

  # 1. Scoring: every method and data variant, all replicas.
  scoring = []
  for m in cfg.pai.methods:
    for variant in pai.mask_variants(cfg, methods.METHODS[m]):
      build = lambda: pai.build_masks(cfg, s, inits, seeds, dens_of[m], one,
                                      paths, m, variant)
      _, cold = timed(build)
      warm = best_time(build, args.repeat)
      scoring.append({"method": m, "variant": variant,
                      "replicas": len(dens_of[m]) * len(seeds),
                      "cold_s": round(cold, 3), "warm_s": round(warm, 4)})
  score_warm = sum(r["warm_s"] for r in scoring)
  score_cold = sum(r["cold_s"] for r in scoring)

  # 2. Training: one replica for train.steps; the plan for --plan-steps.
  def train(state, n, steps):
    hp = optim.stack_hparams([cfg.train.lr] * n, [cfg.train.weight_decay] * n)
    return lambda: s.trainer.run(common.copy_tree(state), hp, steps)[1]

  single = jax.tree.map(lambda a: a[:1], inits.scored)
  _, one_cold = timed(train(single, 1, cfg.train.steps))
  one_warm = best_time(train(single, 1, cfg.train.steps), 1)
  bank = {}
  for m in cfg.pai.methods:
    for variant in pai.mask_variants(cfg, methods.METHODS[m]) + (
        ["shuffle"] if "shuffle" in cfg.pai.checks else []):
      src = "clean" if variant == "shuffle" else variant
      bank[f"{m}/{variant}"] = pai.build_masks(cfg, s, inits, seeds,
                                               dens_of[m], one, paths, m, src)
  plan = pai.training_plan(cfg, seeds, dens_of)
  state, mask = pai.gather_state(s, inits, seeds, bank, plan, cfg, dens_of)
  state = state.replace(mask=mask)
  steps = min(args.plan_steps, cfg.train.steps)
  plan_warm = best_time(train(state, len(plan), steps), 1)
  plan_full = plan_warm * cfg.train.steps / steps

  # 3. SynFlow: one compiled program vs a Python loop of rounds.
  prog = s.trainer.prog
  syn = scorers.get("synflow")
  groups = rounds.global_groups(one)
  sizes = rounds.group_sizes(one, groups)
  axis_seeds = [sd for _ in dens for sd in seeds]
  take = np.array([seeds.index(sd) for sd in axis_seeds])
  params = jax.tree.map(lambda a: a[take], inits.scored.params)
  stats = jax.tree.map(lambda a: a[take], inits.scored.batch_stats)
  keys = jax.random.split(jax.random.key(0), len(take))
  density = jnp.asarray([d for d in dens for _ in seeds], jnp.float32)
  forward = methods.forward_fn(prog)
  ctx = lambda p, b, k, m: scorers.ScoreContext(
      p, m, k, None, (), forward, None, b, tuple(s.data.input_shape))

  def whole(p, b, k, d):
    return rounds.prune_in_rounds(syn, ctx(p, b, k, one), groups,
                                  rounds.global_counts(one, d), args.rounds)

  def one_round(p, b, k, d, m, r):
    target = rounds.scheduled_counts(rounds.global_counts(one, d), sizes,
                                     r + 1, args.rounds)
    scores = syn(ctx(p, b, jax.random.fold_in(k, r), m))
    return allocators.keep_top(scores, m, groups, target)

  whole_fn = loop_lib.vmapped(whole)
  round_fn = loop_lib.vmapped(one_round)
  start = jax.tree.map(lambda m: None if m is None else
                       jnp.broadcast_to(m, (len(take), *m.shape)), one,
                       is_leaf=lambda x: x is None)

  def python_loop():
    m = start
    for r in range(args.rounds):
      m = round_fn(params, stats, keys, density, m,
                   jnp.full(len(take), r, jnp.int32))
    return m

  program = lambda: whole_fn(params, stats, keys, density)
  _, program_cold = timed(program)
  _, loop_cold = timed(python_loop)
  program_warm = best_time(program, args.repeat)
  loop_warm = best_time(python_loop, args.repeat)
  same = all(bool(np.array_equal(a, b)) for a, b in zip(
      jax.tree.leaves(program()), jax.tree.leaves(python_loop())))

  report("pai_scoring", {
      "config": args.config or "default", "model": cfg.model.name,
      "dataset": cfg.data.name, "methods": list(cfg.pai.methods),
      "densities": dens, "seeds": seeds, "checks": list(cfg.pai.checks),
      "synflow_rounds": args.rounds, "train_steps": cfg.train.steps,
      "scoring": scoring,
      "scoring_all_warm_s": round(score_warm, 3),
      "scoring_all_cold_s": round(score_cold, 3),
      "one_training_run_warm_s": round(one_warm, 3),
      "one_training_run_cold_s": round(one_cold, 3),
      "scoring_vs_one_training_run": round(score_warm / one_warm, 3),
      "plan_replicas": len(plan),
      "plan_training_warm_s_scaled": round(plan_full, 2),
      "scoring_vs_plan_training": round(score_warm / plan_full, 4),
      "synflow": {
          "replicas": int(len(take)), "rounds": args.rounds,
          "one_program_warm_s": round(program_warm, 4),
          "python_loop_warm_s": round(loop_warm, 4),
          "one_program_cold_s": round(program_cold, 3),
          "python_loop_cold_s": round(loop_cold, 3),
          "speedup_warm": round(loop_warm / program_warm, 2),
          "masks_equal": same},
  }, args.out)


if __name__ == "__main__":
  main()
