"""`jaxticket pretrain` (issue 17): the run contract on generated text
fixtures, the checkpoint that init.checkpoint reads, and its errors."""

import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config, models
from jaxticket.core import checkpoint
from jaxticket.core.checks import ConfigError
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.pretrain import pretrain, settings
from jaxticket.experiments.summaries import PretrainSummary

from test_text_data import write_fixtures


def _encoder(output, depth=1, width=0.25, vocab=260):
  return models.build("transformer", 2, width, depth, vocab_size=vocab,
                      heads=2, max_len=32, output=output)


def _init(model, seed=0):
  """Params of ``model`` (a jitted init: the eager one takes seconds)."""
  return jax.jit(model.init)(jax.random.key(seed),
                             jnp.zeros((1, 32)))["params"]


def _save_mlm_checkpoint(directory, vocab=260, tokenizer="bytes"):
  params = _init(_encoder("mlm", vocab=vocab), 7)
  init_checkpoint.save(str(directory), params,
                       {"tokenizer": tokenizer, "vocab_size": vocab,
                        "layers": 1, "heads": 2, "dim": 32, "max_len": 32})
  return params


def test_load_into_restores_every_pretrained_leaf_and_keeps_the_head(tmp_path):
  saved = _save_mlm_checkpoint(tmp_path)
  fresh = _init(_encoder("classify"))
  got, loaded = init_checkpoint.load_into(str(tmp_path), fresh, "bytes", 260)
  flat = lambda t: {"/".join(str(getattr(k, "key", k)) for k in p): np.asarray(v)
                    for p, v in jax.tree_util.tree_flatten_with_path(t)[0]}
  s, f, g = flat(saved), flat(fresh), flat(got)
  assert "layer_0/attention/query/kernel" in loaded
  for name in g:
    if name in s:
      np.testing.assert_array_equal(g[name], s[name])  # bit for bit
    else:  # pooler and head: the fresh init
      assert name.split("/")[0] in ("pooler", "head"), name
      np.testing.assert_array_equal(g[name], f[name])
  assert not any(n.startswith("mlm_") for n in g)


def test_checkpoint_errors_are_one_line(tmp_path):
  fresh = _init(_encoder("classify"))
  with pytest.raises(ConfigError, match="holds no pre-trained checkpoint"):
    init_checkpoint.load_into(str(tmp_path / "nothing"), fresh, "bytes", 260)
  _save_mlm_checkpoint(tmp_path, vocab=300, tokenizer="bpe")
  with pytest.raises(ConfigError, match="vocabulary mismatch"):
    init_checkpoint.load_into(str(tmp_path), fresh, "bytes", 260)
  wider = _init(_encoder("classify", width=0.5))
  with pytest.raises(ConfigError, match="has shape"):
    init_checkpoint.load_into(str(tmp_path), wider, "bpe", 300)


def test_settings_validation_names_the_key():
  cfg = config.default_config()
  cfg.pretrain.norm = "middle"
  with pytest.raises(ConfigError, match="pretrain.norm"):
    settings.validate(cfg)
  cfg = config.default_config()
  cfg.pretrain.pool = "max"
  with pytest.raises(ConfigError, match="pretrain.pool"):
    settings.validate(cfg)
  cfg = config.default_config()
  cfg.pretrain.corpus = "imdb"
  with pytest.raises(ConfigError, match="pretrain.corpus"):
    settings.validate(cfg)
  cfg = config.default_config()
  cfg.pretrain.downstream = "kjv_x"
  with pytest.raises(ConfigError, match="pretrain.downstream"):
    settings.validate(cfg)
  for corpus in settings.CORPORA:  # kjv (testament) is in-domain, README
    cfg = config.default_config()
    cfg.pretrain.downstream = corpus
    settings.validate(cfg)
  cfg = config.default_config()
  cfg.init.checkpoint = "/somewhere"
  from jaxticket.experiments import common
  with pytest.raises(ConfigError, match="init.checkpoint"):
    common.setup(cfg)


def _tiny(tmp_path):
  dirs = write_fixtures(str(tmp_path / "fixtures"))
  cfg = config.default_config("tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  p = cfg.pretrain
  p.dir, p.downstream_dir = dirs["kjv"], dirs["rotten_tomatoes"]
  p.max_train, p.max_eval, p.batch_size = 0, 0, 8
  p.steps, p.eval_every, p.warmup_steps = 6, 3, 1
  p.finetune_steps, p.finetune_eval_every, p.finetune_batch_size = 4, 2, 4
  p.finetune_seeds, p.finetune_max_train = 2, 0
  cfg.train.cpu_devices = 0
  return cfg


@pytest.mark.slow
def test_pretrain_run_contract_and_init_checkpoint(tmp_path):
  cfg = _tiny(tmp_path)
  wd = str(tmp_path / "run")
  summary = pretrain.run(cfg, wd, progress=False)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "curves.png",
               "pretrained.json", "checkpoints/pretrained"):
    assert os.path.exists(os.path.join(wd, name)), name
  assert isinstance(summary, PretrainSummary) and summary.steps == 6
  d = summary.downstream[0]
  assert d["task"] == "rotten_tomatoes" and len(
      d["pretrained"]["test_accuracy"]["per_seed"]) == 2
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert {r["stage"] for r in rows} == {"pretrain", "finetune_rotten_tomatoes"}
  saved = checkpoint.load_tree(os.path.join(wd, init_checkpoint.PARAMS))
  assert "mlm_head" in saved["params"] and "head" not in saved["params"]
  # Same command, same workdir: the finished run is returned.
  again = pretrain.run(cfg, wd, progress=False)
  assert again.mlm == summary.mlm
  # A missing checkpoint is refused before the workdir is claimed.
  cfg2 = copy.deepcopy(cfg)
  cfg2.init.checkpoint = str(tmp_path / "missing")
  with pytest.raises(ConfigError, match="no pre-trained checkpoint"):
    pretrain.run(cfg2, str(tmp_path / "run2"), progress=False)
  assert not os.path.exists(tmp_path / "run2" / "config.json")
