"""The ``jaxticket`` command, generated from the experiment registry.

    jaxticket list
    jaxticket COMMAND [--config FILE[:SIZE]] [--config.KEY=VALUE ...] [--workdir DIR]

Each subcommand is an entry of :mod:`jaxticket.experiments.registry`; its
module's ``command(cfg, args)`` runs it and ``console(summary)`` says what
to print.

With no ``--config`` the embedded default runs (LeNet-300-100 on MNIST-1D,
offline). Overrides use the config's dotted keys, e.g. ``--config.train.lr=0.05``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

DESCRIPTION = """\
jaxticket: lottery-ticket research in JAX, vectorized over seeds.

Every command reads an ml_collections config (--config FILE.py[:SIZE]; none =
the embedded offline default, LeNet-300-100 on MNIST-1D with 4 seeds),
applies --config.KEY=VALUE overrides, and writes config.json, metrics.jsonl,
summary.json, report.md, plots and checkpoints/ to --workdir. Compiled
programs are cached in ~/.cache/jaxticket/jax (--compile-cache DIR to move
it, --no-compile-cache to turn it off), so a rerun starts faster."""

EPILOG = """\
examples:
  jaxticket sanity
  jaxticket sanity --config.sanity.lrs=0.01,0.1,0.3 --config.sanity.seeds=5
  jaxticket study --factor model.width=0.5,1,2
  jaxticket imp
  jaxticket imp --config configs/mnist1d_lenet.py:tiny --workdir /tmp/run
  jaxticket imp --config.imp.rewind=step --config.imp.rewind_step=100
  jaxticket train --config configs/cifar10_resnet20.py --config.train.lr=0.05
  jaxticket sweep --grid train.lr=0.03,0.1,0.3 --grid model.width=0.5,1
  jaxticket lmc --config.lmc.rewind_steps=0,25,100,500
  jaxticket lmc --config.lmc.level=4 --config.lmc.imp_workdir=runs/imp
  jaxticket dst --config.dst.methods=static_erk,rigl,gmp,ticket,finetune
  jaxticket imp --config.imp.rewind=step --config.imp.rewind_step=-1  (auto k)
  jaxticket strong --config.strong.keep=0.1,0.5 --config.strong.rules=layerwise,units
  jaxticket theory --config.theory.parts=teacher_student
  jaxticket pai --config configs/mnist1d_lenet.py:tiny --workdir /tmp/pai
  jaxticket pai --config.pai.methods=snip,grasp,synflow --config.pai.densities=0.1,0.01
  jaxticket graph --config configs/graph.py:tiny
  jaxticket elastic --config configs/elastic_mnist1d_resnet1d.py:tiny --workdir /tmp/elastic
  jaxticket elastic --config configs/elastic_mnist1d_resnet1d.py --config.elastic.target_depths=5 --config.elastic.mapping='0:0;1:1,2;2:3,4'

config keys (see configs/ and jaxticket/config.py for meanings):
"""


def _config_keys_help() -> str:
  from jaxticket import config as config_lib
  keys = config_lib.all_keys(config_lib.default_config())
  return textwrap.fill(", ".join(keys), width=78, initial_indent="  ",
                       subsequent_indent="  ")


def build_parser() -> argparse.ArgumentParser:
  """One subcommand per registry entry, plus ``list``. The registry imports
  no experiment; the config-key list in the help imports the config (and
  so jax, about 0.6 s)."""
  from jaxticket.experiments import registry
  parser = argparse.ArgumentParser(
      prog="jaxticket", description=DESCRIPTION,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="Run `jaxticket list` for what each experiment does and "
             "`jaxticket COMMAND --help` for its options.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  sub.add_parser("list", help="name every experiment and what it does.",
                 description="Name every experiment and what it does.")
  for exp in registry.EXPERIMENTS.values():
    p = sub.add_parser(exp.name, help=exp.help, description=exp.help,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EPILOG + _config_keys_help())
    p.add_argument("--config", default="", metavar="FILE[:SIZE]",
                   help="config file defining get_config(arg); SIZE (e.g. "
                        "'tiny') is passed as arg. Default: the embedded "
                        "offline default.")
    p.add_argument("--workdir", default=os.path.join("runs", exp.name),
                   help="run directory (default: %(default)s).")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars.")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--compile-cache", default=None, metavar="DIR",
                       help="jax persistent compilation cache directory: a "
                            "second identical run loads its programs "
                            "instead of compiling (default: "
                            "$JAXTICKET_COMPILE_CACHE, else "
                            "$XDG_CACHE_HOME/jaxticket/jax or "
                            "~/.cache/jaxticket/jax; "
                            "JAXTICKET_COMPILE_CACHE=off or empty: no "
                            "cache).")
    cache.add_argument("--no-compile-cache", action="store_true",
                       help="no persistent compilation cache (compile every "
                            "program afresh).")
    for argument in exp.arguments:
      argument.add_to(p)
  return parser


def experiment_list() -> str:
  """``jaxticket list``: every experiment, one line each."""
  from jaxticket.experiments import registry
  width = max(len(n) for n in registry.names())
  lines = [f"  {e.name:<{width}}  {e.summary}"
           for e in registry.EXPERIMENTS.values()]
  return "experiments (jaxticket COMMAND --help for options):\n" + \
      "\n".join(lines)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  """Split argv into known options and ``--config.KEY=VALUE`` overrides."""
  parser = build_parser()
  args, rest = parser.parse_known_args(argv)
  overrides, unknown = [], []
  it = iter(rest)
  for item in it:
    if item.startswith("--config."):
      body = item[len("--config."):]
      if "=" not in body:  # allow "--config.a.b VALUE"
        body = f"{body}={next(it, '')}"
      overrides.append(body)
    else:
      unknown.append(item)
  if unknown:
    parser.error(f"unrecognized arguments: {' '.join(unknown)}")
  if args.command is None:
    parser.print_help()
    raise SystemExit(2)
  return args, overrides


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  if argv[:1] == ["list"] and len(argv) == 1:  # no parser: no jax import
    print(experiment_list())
    return 0
  args, overrides = parse(argv)
  if args.command == "list":
    print(experiment_list())
    return 0
  # Heavy imports after parsing, and only the command's own module.
  from jaxticket import config as config_lib
  from jaxticket.core import runtime
  from jaxticket.core.checkpoint import CheckpointError
  from jaxticket.core.workdir import WorkdirError
  from jaxticket.experiments import registry
  from jaxticket.experiments.common import DivergenceError
  exp = registry.get(args.command)
  try:
    cfg = config_lib.apply_overrides(config_lib.load(args.config), overrides)
    config_lib.validate(cfg)
    runtime.enable_compile_cache(args.compile_cache,
                                 enabled=not args.no_compile_cache)
    runtime.set_cpu_devices(cfg.train.cpu_devices)
    module = registry.load(args.command)
    summary = module.command(cfg, args)
  except (config_lib.ConfigError, WorkdirError, CheckpointError,
          DivergenceError, ValueError, FileNotFoundError) as e:
    print(f"jaxticket {args.command}: error: {e}", file=sys.stderr)
    return 2
  if summary is None:  # a process that leaves the writing to process 0
    return 0
  print()
  print(module.console(summary))
  print(f"\nResults in {os.path.abspath(args.workdir)} ({exp.outputs}).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
