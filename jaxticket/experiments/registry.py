"""The experiment registry: name -> experiment, imported lazily.

The ``jaxticket`` command is generated from this table (a subcommand per
entry, ``jaxticket list``), and experiments that build on each other call
through :func:`load` instead of importing each other (no import cycles).
Entries hold only text and argument specs, so ``--help`` and ``list`` never
import jax.

An experiment module (``Experiment.module``) provides

    command(cfg, args) -> summary | None    run it (args: the parsed CLI
                                            namespace, incl. workdir and
                                            no_progress); None: nothing to
                                            print (a non-writing process)
    console(summary) -> str                 what the command prints
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from jaxticket.core.checks import check_choice


@dataclasses.dataclass(frozen=True)
class Argument:
  """One command-line option of an experiment (argparse keywords)."""
  flags: tuple[str, ...]
  kwargs: tuple[tuple[str, object], ...] = ()

  def add_to(self, parser) -> None:
    parser.add_argument(*self.flags, **dict(self.kwargs))


def arg(*flags: str, **kwargs) -> Argument:
  return Argument(tuple(flags), tuple(kwargs.items()))


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A registry entry: the subcommand ``name``, a one-line ``summary`` for
  ``jaxticket list``, a longer ``help``, the module that runs it, its
  extra options, and what its workdir holds."""
  name: str
  summary: str
  help: str
  module: str
  arguments: tuple[Argument, ...] = ()
  outputs: str = "summary.json, report.md, metrics.jsonl, checkpoints/"


_DISTRIBUTED = (
    arg("--distributed", action="store_true",
        help="multi-host: call jax.distributed.initialize (auto-detected on "
             "TPU pods / SLURM, or from the three options below); each "
             "process runs every P-th program on its own devices, process 0 "
             "merges (--workdir on a shared filesystem)."),
    arg("--span-hosts", action="store_true",
        help="with --distributed: run every program on the devices of ALL "
             "processes (its replica axis sharded over a global mesh) "
             "instead of splitting programs between processes; for one big "
             "program on a pod. Process 0 writes the files."),
    arg("--coordinator", default=None, metavar="HOST:PORT",
        help="address of process 0's coordinator service."),
    arg("--num-processes", type=int, default=None, metavar="P",
        help="number of processes in the job."),
    arg("--process-id", type=int, default=None, metavar="I",
        help="this process's index, 0..P-1."),
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        "sanity", "Ma et al. (2021) sanity check: jackpot or secondary prize?",
        "Ma et al. (2021) sanity checks: IMP at every LR of sanity.lrs, the "
        "standard controls, and the jackpot / secondary-prize verdict.",
        "jaxticket.experiments.sanity.sanity"),
    Experiment(
        "study", "The sanity check per value of one config key.",
        "Factor study: the full sanity check per value of one config key "
        "(--factor model.width=0.5,1,2), with a summary table.",
        "jaxticket.experiments.study.study",
        (arg("--factor", required=True, metavar="KEY=V1,V2,...",
             help="config key and values to study, e.g. model.width=0.5,1,2 "
                  "or model.residual=true,false; separate tuple values by ';' "
                  "(sanity.lrs=0.01,0.03;0.1,0.3)."),),
        "summary.json, report.md, study.png; one sanity workdir per value"),
    Experiment(
        "imp", "Iterative magnitude pruning with rewinding, all seeds at once.",
        "Iterative (or one-shot) magnitude pruning with rewinding; all seeds "
        "in one compiled program.",
        "jaxticket.experiments.imp.imp"),
    Experiment(
        "train", "Dense training of every seed (IMP with 0 levels).",
        "Train the dense network (all seeds vmapped); IMP with 0 levels.",
        "jaxticket.experiments.imp.train"),
    Experiment(
        "sweep", "IMP over a grid of config values, as few programs as possible.",
        "IMP over a grid of config values (--grid KEY=V1,V2 ...), as few "
        "programs as possible: LR / weight-decay / prune-fraction points x "
        "seeds on one replica axis, sharded over the local devices.",
        "jaxticket.experiments.sweep.sweep",
        (arg("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
             help="a grid axis (repeatable); learning rate, weight decay, "
                  "prune fraction and rewind step points share one program "
                  "on the replica axis, other keys make separate programs."),
         *_DISTRIBUTED),
        "summary.json, report.md, sweep.png; one IMP workdir per program"),
    Experiment(
        "lmc", "Linear mode connectivity / instability analysis.",
        "Linear mode connectivity / instability analysis (Frankle et al. "
        "2020): children of theta_k at each k of lmc.rewind_steps, error "
        "barriers along linear paths; for lmc.level=L also ticket-to-"
        "solution connectivity (Evci et al. 2022).",
        "jaxticket.experiments.lmc.lmc", (),
        "summary.json, report.md, lmc_paths.png, instability.png, "
        "metrics.jsonl"),
    # --- strong tickets and theory (issue 16) ---
    Experiment(
        "strong", "Strong tickets: edge-popup, structured, subset-sum "
        "construction.",
        "Strong lottery tickets: subnetworks of frozen random networks "
        "found by edge-popup (Ramanujan et al. 2020; top-k per layer, "
        "global, or whole units as in da Cunha et al.'s structured tickets) "
        "vs width and vs trained dense/IMP references, and built without "
        "training by random subset sum (Pensia et al. 2020) with the "
        "approximation error vs over-parameterization. strong.keep is the "
        "fraction of weights (units) KEPT, the paper's k.",
        "jaxticket.experiments.strong.strong", (),
        "summary.json, report.md, strong_vs_width.png, "
        "strong_vs_density.png, construction.png, metrics.jsonl, stages/, "
        "reference_w*/ (imp sub-runs)"),
    Experiment(
        "theory", "Greedy forward selection and the teacher-student "
        "sample complexity.",
        "Theory checks: greedy forward selection of units from a trained "
        "MLP (Ye et al. 2020; loss gap vs size against L1-norm and random "
        "selection, layer-wise pruning with fine-tuning) and students of a "
        "pruned one-hidden-layer ReLU teacher (Zhang et al. 2021; success "
        "rate over samples x density, samples needed vs unpruned weights, "
        "convergence speed). Knobs under theory.greedy.* and "
        "theory.teacher.*.",
        "jaxticket.experiments.theory.theory", (),
        "summary.json, report.md, loss_gap.png, phase_diagram.png, "
        "samples_needed.png, stages/, dense/ (train sub-run)"),
    Experiment(
        "pai", "Pruning at initialization with Su et al.'s checks.",
        "Pruning at initialization (pai.methods, from: random, magnitude, "
        "snip, snip_iter, grasp, grasp_iter, synflow, random_erk, "
        "random_uniform, smart_ratio, hybrid, gem_miner: learned by "
        "GEM-MINER's score phase, pai.gem_*) at every "
        "density of pai.densities, with Su et al. (2020)'s checks on every "
        "mask (layer-wise shuffle, re-initialization, scores on random "
        "labels / shuffled pixels / half the data), layer collapse, the "
        "dense, small-dense and IMP references and Ma et al. (2021)'s "
        "verdict; all masks of one shape train as one program.",
        "jaxticket.experiments.pai.pai", (),
        "summary.json, report.md, pai_accuracy.png, pai_collapse.png, "
        "metrics.jsonl, checkpoints/masks, imp/ (the IMP reference)"),
    Experiment(
        "dst", "Dynamic sparse training vs tickets: SET, RigL, GMP, GraNet, "
        "scratch, IMP, fine-tuning.",
        "Dynamic sparse training vs lottery tickets: static random (ERK/"
        "uniform), SET, RigL, GMP, GraNet (dense- and sparse-to-sparse), "
        "scratch with the sparsity-aware init, the IMP ticket and prune-and-"
        "fine-tune at the sparsities of the IMP levels dst.levels, same "
        "steps and seeds, in one program; gradient flow and barriers to the "
        "pruned solution (Evci et al. 2020, 2022; Liu et al. 2021).",
        "jaxticket.experiments.dst.dst", (),
        "summary.json, report.md, accuracy_vs_step.png, grad_norm_vs_step."
        "png, mask_updates.png, barriers.png, metrics.jsonl, checkpoints/, "
        "imp/, imp_finetune/"),
    # --- graph tickets (issue 19) ---
    Experiment(
        "graph", "Graph lottery tickets (UGS) and spectral edge pruning.",
        "Graph lottery tickets: GCN / GraphSAGE on offline graphs (karate "
        "club, stochastic block models of chosen homophily, the Drosophila "
        "connectome, Planetoid files from graph.dir) with the adjacency as "
        "a mask leaf. UGS (Chen et al. 2021: trainable edge and weight "
        "masks with L1, prune graph.edge_fraction of the edges and "
        "graph.weight_fraction of the weights per round, rewind) against "
        "random pruning, the weight-mask controls and a data-free spectral "
        "edge mask; spectral pruning (Jamadandi et al. 2024: greedy "
        "spectral-gap deletion / addition by a first-order proxy, never "
        "disconnecting) with its effect on accuracy, the spectral gap and "
        "the Dirichlet energy vs depth. Knobs under graph.*.",
        "jaxticket.experiments.graph.graph", (),
        "summary.json, report.md, accuracy_vs_edges.png, "
        "accuracy_vs_weights.png, spectral_gap.png, depth.png, "
        "metrics.jsonl, stages/, masks/"),
    Experiment(
        "pretrain", "Masked-LM pre-training of a small BERT on offline text.",
        "Pre-train the small BERT-style encoder (models/transformer.py) with "
        "masked language modelling (15 in 100 tokens selected; of those 8 in "
        "10 become [MASK], 1 a random token, 1 stays) on text that OS packages ship (pretrain.corpus: "
        "kjv, austen, fortunes, rotten_tomatoes; bytes or BPE tokens), write a "
        "checkpoint that --config.init.checkpoint=WORKDIR reads, and compare "
        "fine-tuning on pretrain.downstream from it vs from scratch (paired "
        "seeds). Knobs under pretrain.*.",
        "jaxticket.experiments.pretrain.pretrain", (),
        "summary.json, report.md, curves.png, pretrained.json, "
        "checkpoints/pretrained, metrics.jsonl, stages/"),
    Experiment(
        "transfer", "BERT-style IMP from a pre-trained checkpoint and the "
        "mask-transfer matrix.",
        "Lottery tickets in the pre-trained encoder (Chen et al. 2020): from "
        "--config.init.checkpoint=DIR (a `jaxticket pretrain` workdir), IMP "
        "on each of transfer.tasks (rotten_tomatoes, fortunes, austen, mlm) "
        "pruning transfer.prune_fraction of the original prunable weights per "
        "round by global magnitude, rewinding every pre-trained tensor (the "
        "task head keeps its trained value), with random pruning and random "
        "reinitialization at each sparsity; then every task's ticket, the MLM "
        "ticket and a random mask trained on every task, with matching and "
        "universal masks marked (within one std of the dense fine-tuned "
        "accuracy). Knobs under transfer.*.",
        "jaxticket.experiments.transfer.transfer", (),
        "summary.json, report.md, accuracy_vs_density.png, metrics.jsonl, "
        "stages/, checkpoints/stages/"),
    # --- elastic tickets (issue 18) ---
    Experiment(
        "elastic", "Elastic tickets: a ticket stretched/squeezed to other "
        "depths.",
        "Elastic lottery tickets (Chen et al. 2021): IMP on the source depth "
        "(elastic.source_depth), then its mask AND rewind weights carried "
        "to every depth of elastic.target_depths by a block mapping per "
        "stage (elastic.mapping 'src:dst1,dst2;...', stages separated by "
        "'|', or elastic.strategy even/last/cycle; stem, head and each "
        "stage's first block kept) and trained with the source's recipe, "
        "next to its layer-wise shuffle, random masks at its per-layer "
        "densities, a PaI method (elastic.pai_method) and IMP run on the "
        "target; error barriers between transformed and IMP tickets. "
        "Residual families only (resnet1d, resnet20/32/56/110).",
        "jaxticket.experiments.elastic.elastic", (),
        "summary.json, report.md, elastic_accuracy.png, metrics.jsonl, "
        "stages/, source/ and target_D/ (imp sub-runs)"),
    # --- task-incremental subnetworks (issue 18) ---
    Experiment(
        "continual", "Task-incremental subnetworks: per-task unit gates "
        "in one shared net.",
        "Task-incremental learning in one shared MLP (HAT / DSN, Gao et "
        "al.): a task sequence from the data section's dataset "
        "(continual.sequence permuted or split, continual.tasks tasks, task "
        "id known at test, multi-head), per task annealed sigmoid gates on "
        "the hidden units; weights earlier tasks use get no gradient (zero "
        "forgetting). Baselines: random unit masks of the same size "
        "(fixed) and fine-tuning one net (finetune). Accuracy matrix, "
        "average accuracy, BWT and FWT per method, seeds on the replica "
        "axis.",
        "jaxticket.experiments.continual.continual", (),
        "summary.json, report.md, accuracy_matrix.png, metrics.jsonl, "
        "stages/"),
    # --- benchmark lottery (issue 20) ---
    Experiment(
        "benchmark", "The benchmark lottery: methods x datasets, ranks, "
        "aggregations, flips.",
        "The benchmark lottery (Dehghani et al. 2021) for tickets: every "
        "method of benchmark.methods (imp = the IMP ticket; any pai method: "
        "random, snip, grasp, synflow, ...; any dst method: set, rigl, gmp, "
        "granet, ...) on every dataset of "
        "benchmark.datasets (images: mnist1d, digits, fashion_mnist; "
        "graphs on benchmark.graph_model: karate, sbm_homophilous, "
        "sbm_heterophilous, drosophila_left/right; text on "
        "benchmark.text_model, from scratch, no synflow: rotten_tomatoes, "
        "fortunes, austen, kjv) at the "
        "densities (1 - benchmark.prune_fraction)^L, L in benchmark.levels, "
        "and the same seeds; each dataset's dense LR picked on validation "
        "from benchmark.lrs (text sets: benchmark.text_lrs with "
        "benchmark.text_optimizer) and used by every method there. "
        "Per-dataset ranks with bootstrap CIs over seeds, mean accuracy / "
        "mean rank / median / wins, Kendall tau-b between datasets and "
        "aggregations, leave-one-dataset-out flips, softmax AURC per method "
        "(and abstain AURC with task.loss=gambler). Resumes per sub-run "
        "(cells/, recipes/).",
        "jaxticket.experiments.benchmark.benchmark", (),
        "summary.json, report.md, rank_heatmap.png, accuracy_vs_density.png, "
        "recipes/DATASET (sweep sub-runs), cells/imp__DATASET (imp), "
        "cells/pai__DATASET (pai), cells/dst__DATASET (dst)"),
)}


def names() -> list[str]:
  return list(EXPERIMENTS)


def get(name: str) -> Experiment:
  """The registry entry ``name`` (a clear error lists the valid names)."""
  check_choice("command", name, EXPERIMENTS, "experiment")
  return EXPERIMENTS[name]


def load(name: str) -> ModuleType:
  """The module of experiment ``name``, imported now."""
  return importlib.import_module(get(name).module)


__all__ = ["Experiment", "Argument", "arg", "EXPERIMENTS", "names", "get",
           "load"]
