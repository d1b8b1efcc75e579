"""The ``jaxticket`` command: thin parsing, one function call per subcommand.

    jaxticket imp   [--config FILE[:SIZE]] [--config.KEY=VALUE ...] [--workdir DIR]
    jaxticket train [--config FILE[:SIZE]] [--config.KEY=VALUE ...] [--workdir DIR]

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

COMMANDS = {
    "sanity": "Ma et al. (2021) sanity checks: IMP at every LR of "
              "sanity.lrs, the standard controls, and the jackpot / "
              "secondary-prize verdict.",
    "study": "Factor study: the full sanity check per value of one config "
             "key (--factor model.width=0.5,1,2), with a summary table.",
    "imp": "Iterative (or one-shot) magnitude pruning with rewinding; "
           "all seeds in one compiled program.",
    "train": "Train the dense network (all seeds vmapped); IMP with 0 levels.",
    "sweep": "IMP over a grid of config values (--grid KEY=V1,V2 ...), as "
             "few programs as possible: LR / weight-decay / prune-fraction "
             "points x seeds on one replica axis, sharded over the local "
             "devices.",
    "lmc": "Linear mode connectivity / instability analysis (Frankle et al. "
           "2020): children of theta_k at each k of lmc.rewind_steps, error "
           "barriers along linear paths; for lmc.level=L also ticket-to-"
           "solution connectivity (Evci et al. 2022).",
}

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
  jaxticket imp --config.imp.rewind=step --config.imp.rewind_step=-1  (auto k)

config keys (see configs/ and jaxticket/config.py for meanings):
"""


def _config_keys_help() -> str:
  from jaxticket import config as config_lib
  keys = config_lib._all_keys(config_lib.default_config())
  return textwrap.fill(", ".join(keys), width=78, initial_indent="  ",
                       subsequent_indent="  ")


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="jaxticket", description=DESCRIPTION,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="Run `jaxticket COMMAND --help` for a command's options.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  for name, text in COMMANDS.items():
    p = sub.add_parser(name, help=text, description=text,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EPILOG + _config_keys_help())
    p.add_argument("--config", default="", metavar="FILE[:SIZE]",
                   help="config file defining get_config(arg); SIZE (e.g. "
                        "'tiny') is passed as arg. Default: the embedded "
                        "offline default.")
    p.add_argument("--workdir", default=os.path.join("runs", name),
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
    if name == "sweep":
      p.add_argument("--grid", action="append", default=[],
                     metavar="KEY=V1,V2,...",
                     help="a grid axis (repeatable); learning rate, weight "
                          "decay, prune fraction and rewind step points share "
                          "one program on the replica axis, other keys make "
                          "separate programs.")
      p.add_argument("--distributed", action="store_true",
                     help="multi-host: call jax.distributed.initialize "
                          "(auto-detected on TPU pods / SLURM, or from the "
                          "three options below); each process runs every "
                          "P-th program on its own devices, process 0 merges "
                          "(--workdir on a shared filesystem).")
      p.add_argument("--span-hosts", action="store_true",
                     help="with --distributed: run every program on the "
                          "devices of ALL processes (its replica axis "
                          "sharded over a global mesh) instead of splitting "
                          "programs between processes; for one big program "
                          "on a pod. Process 0 writes the files.")
      p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="address of process 0's coordinator service.")
      p.add_argument("--num-processes", type=int, default=None, metavar="P",
                     help="number of processes in the job.")
      p.add_argument("--process-id", type=int, default=None, metavar="I",
                     help="this process's index, 0..P-1.")
    if name == "study":
      p.add_argument("--factor", required=True, metavar="KEY=V1,V2,...",
                     help="config key and values to study, e.g. "
                          "model.width=0.5,1,2 or model.residual=true,false; "
                          "separate tuple values by ';' "
                          "(sanity.lrs=0.01,0.03;0.1,0.3).")
  return parser


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
  args, overrides = parse(sys.argv[1:] if argv is None else argv)
  # Heavy imports after parsing, and only the command's own module (sanity
  # and study pull in scipy.stats, 0.4 s of every other command's start).
  from jaxticket import config as config_lib
  from jaxticket import imp
  from jaxticket import report
  from jaxticket import runtime
  from jaxticket.checkpoint import CheckpointError
  from jaxticket.workdir import WorkdirError
  try:
    cfg = config_lib.apply_overrides(config_lib.load(args.config), overrides)
    if args.command == "train":
      cfg.imp.levels = 0
    config_lib.validate(cfg)
    runtime.enable_compile_cache(args.compile_cache,
                                 enabled=not args.no_compile_cache)
    runtime.set_cpu_devices(cfg.train.cpu_devices)
    if args.command == "sanity":
      from jaxticket import sanity
      summary = sanity.run(cfg, args.workdir, progress=not args.no_progress)
    elif args.command == "lmc":
      from jaxticket import lmc
      summary = lmc.run(cfg, args.workdir, progress=not args.no_progress)
    elif args.command == "sweep":
      from jaxticket import sweep
      index, count = 0, 1
      if args.span_hosts and not args.distributed:
        raise config_lib.ConfigError(
            "--span-hosts needs --distributed (a multi-process job).")
      if args.distributed:
        index, count = runtime.init_distributed(
            args.coordinator, args.num_processes, args.process_id,
            span_hosts=args.span_hosts)
      summary = sweep.run(cfg, args.grid, args.workdir,
                          progress=not args.no_progress,
                          process_index=index, process_count=count)
      if summary is None:
        print(f"process {index}: " + (
            "done; process 0 wrote" if runtime.spans_hosts() else
            "its programs are done; process 0 merges") +
              f" the results into {os.path.abspath(args.workdir)}.")
        return 0
    elif args.command == "study":
      from jaxticket import study
      summary = study.run(cfg, args.factor, args.workdir,
                          progress=not args.no_progress)
    else:
      summary = imp.run(cfg, args.workdir, command=args.command,
                        progress=not args.no_progress)
  except (config_lib.ConfigError, WorkdirError, CheckpointError,
          imp.DivergenceError, ValueError, FileNotFoundError) as e:
    print(f"jaxticket {args.command}: error: {e}", file=sys.stderr)
    return 2
  print()
  if args.command == "study":
    print(report.study_table(summary))
  elif args.command == "sanity":
    print(report.verdict_table(summary["verdicts"]))
    print("\n" + summary["conclusion"])
  elif args.command == "sweep":
    print(report.sweep_table(summary))
  elif args.command == "lmc":
    print(report.lmc_table(summary["rows"]))
    print(f"\nstable from rewind step: {summary['stable_rewind_step']}")
  else:
    print(report.imp_table(summary["levels"]))
  contents = {
      "study": "summary.json, report.md, study.png; one sanity workdir per "
               "value",
      "lmc": "summary.json, report.md, lmc_paths.png, instability.png, "
             "metrics.jsonl",
      "sweep": "summary.json, report.md, sweep.png; one IMP workdir per "
               "program"}.get(
          args.command, "summary.json, report.md, metrics.jsonl, checkpoints/")
  print(f"\nResults in {os.path.abspath(args.workdir)} ({contents}).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
