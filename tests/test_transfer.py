"""`jaxticket transfer` (issue 17, items 4-5): BERT-tickets rewinding,
pruning of the original weights per round, mask transfer bit for bit, its
errors, and the run contract end to end on generated text fixtures."""

import copy
import json
import os
import re

import jax
import numpy as np
import pytest

from jaxticket import config
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import ConfigError
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.summaries import TransferSummary
from jaxticket.experiments.transfer import settings, transfer
from jaxticket.models import transformer

from test_pretrain import _encoder, _init, _save_mlm_checkpoint
from test_text_data import write_fixtures


def _flat(tree):
  return {masks_lib.path_str(p): v for p, v in
          jax.tree_util.tree_flatten_with_path(
              tree, is_leaf=lambda x: x is None)[0]}


def test_rewind_restores_every_pretrained_leaf_and_keeps_the_head(tmp_path):
  saved = _save_mlm_checkpoint(tmp_path)
  fresh = _init(_encoder("classify"))
  pre, loaded = init_checkpoint.load_into(str(tmp_path), fresh, "bytes", 260)
  # "trained": every leaf moved away from where it started
  trained = jax.tree.map(lambda a: np.asarray(a) + 1.0, pre)
  got = _flat(transfer.rewind(trained, pre, set(loaded)))
  s, t = _flat(saved), _flat(trained)
  prunable = [n for n in got if re.search(transformer.PRUNABLE, n)]
  assert "layer_0/attention/query/kernel" in prunable
  for name in got:
    if name in s:  # pre-trained: back to the checkpoint, bit for bit
      np.testing.assert_array_equal(got[name], s[name])
    else:  # pooler and head: their trained value
      assert name.split("/")[0] in ("pooler", "head"), name
      np.testing.assert_array_equal(got[name], t[name])
  for name in prunable:
    if not name.startswith("pooler"):
      assert name in s, name  # every prunable encoder leaf is rewound


def test_each_round_prunes_a_tenth_of_the_original_weights():
  params = _init(_encoder("classify"))
  mask = masks_lib.ones(params, transformer.PRUNABLE)
  _, total = masks_lib.count(mask)
  key = jax.random.key(0)
  prune = jax.jit(transfer.prune_to, static_argnums=(2, 3))
  prev = mask
  for level in range(1, 6):
    keep = transfer.kept_target(total, level, 0.1)
    mask = prune(params, prev, keep, "magnitude", key)
    kept = int(masks_lib.count(mask)[0])
    assert kept == total - round(0.1 * level * total)
    assert int(masks_lib.count(prev)[0]) - kept == pytest.approx(
        0.1 * total, abs=1)  # one tenth of the ORIGINAL weights per round
    for a, b in zip(jax.tree.leaves(mask), jax.tree.leaves(prev)):
      assert not np.any(np.asarray(a) & ~np.asarray(b))  # pruned stay pruned
    # global magnitude: every kept weight >= every newly pruned one
    new = np.concatenate([np.abs(np.asarray(_flat(params)[n]))[
        np.asarray(_flat(prev)[n]) & ~np.asarray(_flat(mask)[n])]
        for n in _flat(mask) if _flat(mask)[n] is not None])
    kept_vals = np.concatenate([np.abs(np.asarray(_flat(params)[n]))[
        np.asarray(_flat(mask)[n])]
        for n in _flat(mask) if _flat(mask)[n] is not None])
    assert new.max() <= kept_vals.min()
    prev = mask


def test_transfer_applies_the_source_mask_bit_for_bit():
  cls = _init(_encoder("classify"))
  mlm = _init(_encoder("mlm"))
  key = jax.random.key(3)
  src = jax.tree.map(
      lambda m: None if m is None else jax.random.bernoulli(
          jax.random.fold_in(key, m.size), 0.4, m.shape),
      masks_lib.ones(cls, transformer.PRUNABLE),
      is_leaf=lambda x: x is None)
  on_mlm = _flat(transfer.carry_mask(src, masks_lib.ones(
      mlm, transformer.PRUNABLE)))
  s = _flat(src)
  assert "pooler/kernel" not in on_mlm  # the MLM net has no pooler
  for name, m in on_mlm.items():
    if m is not None:
      np.testing.assert_array_equal(np.asarray(m), np.asarray(s[name]))
  # MLM ticket on a classifier: the encoder bit for bit, the pooler dense
  back = _flat(transfer.carry_mask(transfer.carry_mask(src, masks_lib.ones(
      mlm, transformer.PRUNABLE)), masks_lib.ones(cls, transformer.PRUNABLE)))
  assert np.asarray(back["pooler/kernel"]).all()
  for name, m in back.items():
    if m is not None and name != "pooler/kernel":
      np.testing.assert_array_equal(np.asarray(m), np.asarray(s[name]))


def test_matching_and_universal_follow_one_std_of_dense():
  dense = {"test_accuracy": {"mean": 0.80, "std": 0.02}}
  assert transfer.matching({"test_accuracy": {"mean": 0.785}}, dense)
  assert not transfer.matching({"test_accuracy": {"mean": 0.775}}, dense)
  cells = [{"level": 1, "source": "a", "target": "a", "matching": True},
           {"level": 1, "source": "a", "target": "b", "matching": False},
           {"level": 1, "source": "random", "target": "a", "matching": True},
           {"level": 1, "source": "random", "target": "b", "matching": True}]
  u = {x["source"]: x for x in transfer.universality(cells, ["a"])}
  assert u["a"]["matching_on"] == ["a"] and not u["a"]["universal"]
  assert u["random"]["universal"]


def test_settings_errors_name_the_key():
  cfg = config.default_config()
  with pytest.raises(ConfigError, match="init.checkpoint"):
    settings.validate(cfg)
  cfg.init.checkpoint = "/x"
  cfg.transfer.tasks = "rotten_tomatoes,imdb"
  with pytest.raises(ConfigError, match="transfer.tasks"):
    settings.validate(cfg)
  cfg.transfer.tasks = "mlm"
  cfg.transfer.rounds, cfg.transfer.prune_fraction = 10, 0.1
  with pytest.raises(ConfigError, match="transfer.rounds"):
    settings.validate(cfg)


def _tiny(tmp_path, dirs, checkpoint):
  cfg = config.default_config("tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  cfg.init.checkpoint = str(checkpoint)
  t = cfg.transfer
  t.dirs = f"rotten_tomatoes={dirs['rotten_tomatoes']},mlm={dirs['kjv']}"
  t.max_train, t.max_eval, t.batch_size = 0, 0, 4
  t.steps, t.eval_every, t.warmup_steps = 4, 2, 1
  cfg.train.cpu_devices = 0
  return cfg


def test_vocabulary_mismatch_is_one_line_before_claiming(tmp_path):
  dirs = write_fixtures(str(tmp_path / "fixtures"))
  _save_mlm_checkpoint(tmp_path / "ckpt", vocab=300, tokenizer="bytes")
  cfg = _tiny(tmp_path, dirs, tmp_path / "ckpt")
  with pytest.raises(ConfigError, match="vocabulary mismatch"):
    transfer.run(cfg, str(tmp_path / "run"), progress=False)
  assert not os.path.exists(tmp_path / "run" / "config.json")
  cfg.init.checkpoint = str(tmp_path / "missing")
  with pytest.raises(ConfigError, match="no pre-trained checkpoint"):
    transfer.run(cfg, str(tmp_path / "run"), progress=False)


@pytest.mark.slow
def test_pretrain_then_transfer_tiny_contract_and_resume(tmp_path,
                                                      monkeypatch):
  from test_pretrain import _tiny as pretrain_tiny
  from jaxticket.experiments.pretrain import pretrain
  pcfg = pretrain_tiny(tmp_path)
  pcfg.pretrain.downstream = ""
  ckpt = tmp_path / "bert"
  pretrain.run(pcfg, str(ckpt), progress=False)
  dirs = write_fixtures(str(tmp_path / "fixtures2"))
  cfg = _tiny(tmp_path, dirs, ckpt)
  wd = str(tmp_path / "run")
  trainers = []
  real_init = loop_lib.Trainer.__init__

  def spy(self, *a, **k):
    real_init(self, *a, **k)
    trainers.append(self)
  monkeypatch.setattr(loop_lib.Trainer, "__init__", spy)
  summary = transfer.run(cfg, wd, progress=False)
  # one Trainer per task, each program traced once (dense, rounds and
  # matrix rows share one replica count)
  assert len(trainers) == 2
  for t in trainers:
    assert t.traces["init"] == 1 and t.traces["run"] == 1, dict(t.traces)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "accuracy_vs_density.png"):
    assert os.path.exists(os.path.join(wd, name)), name
  assert isinstance(summary, TransferSummary)
  assert summary.tasks == ["rotten_tomatoes", "mlm"]
  # :tiny: 2 rounds of 20% of the original weights
  np.testing.assert_allclose(summary.densities, [0.8, 0.6], atol=1e-3)
  arms = {(r["task"], r["level"], r["arm"]) for r in summary.rows}
  assert ("mlm", 2, "random_reinit") in arms and ("rotten_tomatoes", 0,
                                                  "dense") in arms
  assert ("rotten_tomatoes", 0, "scratch") in arms
  assert len(summary.matrix) == 2 * 2 * 3  # rounds x targets x sources
  for m in summary.matrix:
    if m["source"] != "random":
      assert len(m["test_accuracy"]["per_seed"]) == 2
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert "transfer_mlm_round2" in {r["stage"] for r in rows}
  again = transfer.run(cfg, wd, progress=False)  # finished: returned
  assert again.matrix == summary.matrix
  # Interrupted before the last round of mlm: that stage and its matrix row
  # are recomputed from the saved states (masks rebuilt) identically.
  os.remove(os.path.join(wd, "summary.json"))
  for name in ("mlm_round2", "transfer_mlm_round2"):
    os.remove(os.path.join(wd, "stages", f"{name}.json"))
  import shutil
  shutil.rmtree(os.path.join(wd, "checkpoints", "stages", "mlm_round2_final"))
  resumed = transfer.run(cfg, wd, progress=False)
  assert resumed.matrix == summary.matrix and resumed.rows == summary.rows
  cfg2 = copy.deepcopy(cfg)
  cfg2.transfer.steps = 5
  with pytest.raises(Exception):
    transfer.run(cfg2, wd, progress=False)  # another config is refused
