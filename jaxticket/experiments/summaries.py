"""The summary.json schema of every experiment, as typed dataclasses.

Field names are the summary.json keys documented in the README; rows and
verdicts stay JSON objects (their keys are documented there too).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxticket.core.summary import Summary


@dataclasses.dataclass
class ImpSummary(Summary):
  """``jaxticket imp`` / ``train``: one row per IMP level."""
  SCHEMA = "imp"
  levels: list[dict]
  seeds: list[int]
  rewind: str
  rewind_step: int
  schedule: str
  strategy: str
  model: str
  dataset: str
  wall_time_s: float
  auto_rewind: dict | None = None


@dataclasses.dataclass
class SweepProgramSummary(Summary):
  """One program of a sweep (its own IMP workdir): IMP levels over grid
  points x seeds on one replica axis."""
  SCHEMA = "sweep_program"
  levels: list[dict]
  seeds: list[int]
  lrs: list[float]
  points: list[dict]
  devices: int = 1


@dataclasses.dataclass
class SanitySummary(Summary):
  """``jaxticket sanity``: accuracy rows per (lr, level), a verdict per
  checked sparsity, the conclusion in words and the diagnostics."""
  SCHEMA = "sanity"
  rows: list[dict]
  verdicts: list[dict]
  largest_jackpot_sparsity: float | None
  largest_secondary_sparsity: float | None
  conclusion: str
  criteria: dict
  lrs: list[float]
  seeds: list[int]
  overlap_top: float
  model: str
  dataset: str
  rewind: str
  rewind_step: int
  diagnostics: list[dict] = dataclasses.field(default_factory=list)
  diverged: list[dict] = dataclasses.field(default_factory=list)
  wall_time_s: float = 0.0
  auto_rewind: dict | None = None
  #: Only the sparsities whose class is decided (no open condition).
  largest_decided_jackpot_sparsity: float | None = None
  largest_decided_secondary_sparsity: float | None = None
  #: Seeds and checked levels of each round (round 0, then adaptive ones).
  rounds: list[dict] = dataclasses.field(default_factory=list)
  #: Selective classification (issue 20) per (lr, level): per setting the
  #: test AURC by ``selective_score`` ("abstain": Deep Gamblers' abstain
  #: output, task.loss=gambler; "softmax": the softmax response), the AURC
  #: by the softmax response and the mean risk at each of ``coverages``.
  selective: list[dict] = dataclasses.field(default_factory=list)
  selective_score: str = "softmax"
  coverages: list[float] = dataclasses.field(default_factory=list)
  #: The training loss (``task`` section): loss, payoff, pretrain_steps.
  task: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class LmcSummary(Summary):
  """``jaxticket lmc``: barriers per rewind step (and, for a ticket,
  ticket-to-solution connectivity)."""
  SCHEMA = "lmc"
  rows: list[dict]
  alphas: list[float]
  seeds: list[int]
  children: int
  level: int
  density: float
  bn_reestimate: bool
  stable_rewind_step: int | None
  stable_barrier: float
  timings_s: dict
  model: str = ""
  dataset: str = ""
  wall_time_s: float = 0.0
  connectivity: dict | None = None


@dataclasses.dataclass
class SweepSummary(Summary):
  """``jaxticket sweep``: one row per grid point and IMP level."""
  SCHEMA = "sweep"
  grid: dict[str, list[Any]]
  rows: list[dict]
  programs: list[dict]
  seeds: int
  model: str
  dataset: str
  hosts: dict
  wall_time_s: float


@dataclasses.dataclass
class StudySummary(Summary):
  """``jaxticket study``: one row per value of the studied config key."""
  SCHEMA = "study"
  factor: str
  values: list[str]
  rows: list[dict]
  wall_time_s: float
  model: str
  dataset: str


# --- strong tickets (issue 16) -------------------------------------------
@dataclasses.dataclass
class StrongSummary(Summary):
  """``jaxticket strong``: edge-popup rows per (rule, width, k), trained
  references per (width, IMP level), and the subset-sum construction."""
  SCHEMA = "strong"
  edge_popup: list[dict]
  references: list[dict]
  construction: dict | None
  keep: list[float]
  widths: list[float]
  rules: list[str]
  seeds: list[int]
  weight_init: str
  model: str
  dataset: str
  timings_s: dict
  wall_time_s: float


@dataclasses.dataclass
class TheorySummary(Summary):
  """``jaxticket theory``: greedy forward selection (loss-gap curves and
  pruning) and the teacher-student phase diagram."""
  SCHEMA = "theory"
  greedy: dict | None
  teacher_student: dict | None
  model: str
  dataset: str
  timings_s: dict
  wall_time_s: float


@dataclasses.dataclass
class PaiSummary(Summary):
  """``jaxticket pai``: per (method, density) the accuracy of the mask and
  of each of Su et al.'s checks, per-layer densities, the checks' gaps,
  Ma et al.'s verdicts, layer collapse, the references."""
  SCHEMA = "pai"
  rows: list[dict]
  checks: list[dict]
  su: list[dict]
  verdicts: list[dict]
  collapse: list[dict]
  collapse_grid: list[dict]
  dense: dict | None
  small_dense: dict
  imp: dict | None
  methods: list[str]
  densities: list[float]
  seeds: list[int]
  checks_run: list[str]
  init: str
  criteria: dict
  model: str
  dataset: str
  lr: float
  conclusion: str
  replicas_trained: int = 0
  skipped: list[dict] = dataclasses.field(default_factory=list)
  timings_s: dict = dataclasses.field(default_factory=dict)
  wall_time_s: float = 0.0


@dataclasses.dataclass
class DstSummary(Summary):
  """``jaxticket dst``: one row per (IMP level, method) with accuracy
  (mean, std, 95% CI over seeds), density, training budget, gradient flow
  and the barrier to the ticket's pruned solution; curves per step; the
  gradient norm at each mask update; the ticket vs prune-and-fine-tune gap."""
  SCHEMA = "dst"
  rows: list[dict]
  curves: list[dict]
  updates: list[dict]
  comparisons: list[dict]
  methods: list[str]
  levels: list[int]
  densities: dict
  seeds: list[int]
  steps: int
  settings: dict
  model: str
  dataset: str
  wall_time_s: float
  imp_workdir: str = ""
  finetune_workdir: str = ""


# --- graph tickets (issue 19) ----------------------------------------------
@dataclasses.dataclass
class GraphSummary(Summary):
  """``jaxticket graph``: per graph its statistics and spectral-gap curves;
  ticket rows per (graph, model, setting, round) and spectral rows per
  (graph, model, depth, setting, fraction), each accuracy a
  ``{mean, std, ci95, n, values}`` over splits x seeds."""
  SCHEMA = "graph"
  graphs: list[dict]
  tickets: list[dict]
  spectral: list[dict]
  gap_curves: dict
  models: list[str]
  seeds: list[int]
  splits: int
  split: str
  methods: list[str]
  rounds: int
  edge_fraction: float
  weight_fraction: float
  timings_s: dict
  wall_time_s: float


# --- pre-training (issue 17) -------------------------------------------------
@dataclasses.dataclass
class PretrainSummary(Summary):
  """``jaxticket pretrain``: the masked-LM run (final validation/test MLM
  loss and masked-token accuracy, ``{mean, std, ci95, n, values}`` over
  seeds), the checkpoint written, and per downstream task the fine-tuned
  accuracy from the checkpoint vs from scratch (paired seeds)."""
  SCHEMA = "pretrain"
  corpus: str
  tokenizer: str
  vocab_size: int
  model: dict
  train_examples: int
  steps: int
  mlm: dict
  checkpoint: str
  downstream: list[dict]
  timings_s: dict
  wall_time_s: float


@dataclasses.dataclass
class TransferSummary(Summary):
  """``jaxticket transfer``: BERT-tickets IMP per task from a pre-trained
  checkpoint. ``dense[task]``: the dense fine-tuned accuracy; ``rows``: per
  (task, round, arm in imp / random_pruning / random_reinit) the density and
  test/validation accuracy (``{mean, std, per_seed}`` over seeds);
  ``matrix``: per (round, source mask, target task) the same and whether it
  is matching on the target (within one std of its dense mean, Chen et al.
  2020 Sec. 2); ``universal``: per (round, source) the targets it matches
  on and whether that is all of them."""
  SCHEMA = "transfer"
  checkpoint: str
  tasks: list[str]
  seeds: list[int]
  prune_fraction: float
  rounds: int
  densities: list[float]
  dense: dict
  rows: list[dict]
  matrix: list[dict]
  universal: list[dict]
  wall_time_s: float


@dataclasses.dataclass
class ElasticSummary(Summary):
  """``jaxticket elastic``: per (target depth, method, level) the density
  and accuracy (mean, std, per seed, 95% t-interval) of the transformed
  ticket and its controls, the target's IMP ticket and dense net; the
  barriers between transformed and IMP tickets; the source's IMP rows."""
  SCHEMA = "elastic"
  source_depth: int
  source_blocks_per_stage: int
  source: list[dict]
  targets: list[dict]
  rows: list[dict]
  barriers: list[dict]
  methods: list[str]
  pai_method: str
  levels: list[int]
  strategy: str
  seeds: list[int]
  model: str
  dataset: str
  rewind: str
  rewind_step: int
  wall_time_s: float = 0.0
  source_imp_s: float = 0.0  # the source IMP sub-run (each target's
  # own phases: targets[i]["timings_s"])


@dataclasses.dataclass
class ContinualSummary(Summary):
  """``jaxticket continual``: per method the accuracy matrix A[i][j]
  (after training task i, test accuracy on task j; mean over seeds and per
  seed), the untrained net's accuracies, ACC, BWT, FWT (mean, std, 95%
  t-interval, per seed) and the fraction of hidden units each task's hard
  gates keep [task][layer]."""
  SCHEMA = "continual"
  rows: list[dict]
  methods: list[str]
  sequence: str
  tasks: int
  classes_per_task: int
  widths: list[int]
  seeds: list[int]
  dataset: str
  steps_per_task: int
  head: str
  wall_time_s: float = 0.0


# --- benchmark lottery (issue 20) ---
@dataclasses.dataclass
class BenchmarkSummary(Summary):
  """``jaxticket benchmark``: per dataset the dense recipe picked on
  validation (``recipes``), per (method, dataset, density) the test
  accuracy and softmax AURC per seed (``cells``), per dataset the ranks
  with bootstrap CIs (``dataset_ranks``), the aggregations, Kendall tau-b
  matrices, leave-one-dataset-out flips and the selective column."""
  SCHEMA = "benchmark"
  methods: list[str]
  datasets: list[str]
  densities: list[float]
  seeds: list[int]
  model: str
  recipes: list[dict]
  cells: list[dict]
  dense: list[dict]
  dataset_ranks: list[dict]
  aggregations: dict
  aggregation_ranks: dict
  tau_datasets: list[list[float]]
  tau_aggregations: list[list[float]]
  leave_one_out: list[dict]
  selective: list[dict]
  subruns: list[dict]
  conclusion: str
  timings_s: dict = dataclasses.field(default_factory=dict)
  wall_time_s: float = 0.0
