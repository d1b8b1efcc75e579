"""Tokenizers wired into the text pipeline (issue 17, items 2 and 6): a
checkpoint's tokenizer (bytes, BPE, an HF folder's WordPiece) is saved with
it, read back, and is the one every later command tokenizes with; a
tokenizer that does not match the checkpoint is one line."""

import json
import os

import numpy as np
import pytest

from jaxticket import config
from jaxticket.core.checks import ConfigError
from jaxticket.data import text_datasets
from jaxticket.data import tokenizer as tokenizer_lib
from jaxticket.experiments import init_checkpoint
from jaxticket.experiments.pretrain import pretrain, settings
from jaxticket.experiments.transfer import transfer

from test_pretrain import _encoder, _init
from test_text_data import write_fixtures

MERGES = 20  # the kjv fixture has ~25 pairs that occur twice


def _bpe_checkpoint(tmp_path, dirs):
  """A BPE checkpoint as `pretrain` writes one: merges learned by
  ``load_text`` on the kjv fixture, saved with random MLM weights."""
  data = text_datasets.load_text(
      "kjv", 32, "mlm", str(tmp_path / "tfds"), dirs["kjv"],
      tokenizer="bpe", bpe_merges=MERGES)
  vocab = data.vocab_size
  params = _init(_encoder("mlm", vocab=vocab), 3)
  ckpt = str(tmp_path / "ckpt")
  os.makedirs(ckpt, exist_ok=True)
  init_checkpoint.save(ckpt, params, {
      "tokenizer": data.tokenizer, "vocab_size": vocab, "corpus": "kjv",
      "layers": 1, "heads": 2, "dim": 32, "max_len": 32}, data.tok)
  return data, ckpt


def test_bpe_is_trained_on_the_corpus_and_round_trips():
  text = "the lord said unto moses, the lord is my shepherd\n" * 5
  tok = tokenizer_lib.get("bpe", text, 12)
  assert tok.vocab_size == 260 + len(tok.merges) and len(tok.merges) == 12
  assert tok.decode(tok.encode(text)) == text
  assert len(tok.encode(text)) < len(text.encode())  # merges were used
  again = tokenizer_lib.loads(tokenizer_lib.dumps(tok))
  assert again.merges == tok.merges
  assert isinstance(tokenizer_lib.loads(tokenizer_lib.dumps(
      tokenizer_lib.ByteTokenizer())), tokenizer_lib.ByteTokenizer)
  with pytest.raises(ConfigError, match="pretrain.bpe_merges"):
    tokenizer_lib.get("bpe", text, 0)
  with pytest.raises(ConfigError, match="init.checkpoint"):
    tokenizer_lib.get("wordpiece")


def test_checkpoint_tokenizer_round_trips_and_later_commands_use_it(
    tmp_path):
  dirs = write_fixtures(str(tmp_path / "fixtures"))
  data, ckpt = _bpe_checkpoint(tmp_path, dirs)
  assert os.path.exists(os.path.join(ckpt, init_checkpoint.TOKENIZER))
  tok = init_checkpoint.tokenizer_of(ckpt)
  assert isinstance(tok, tokenizer_lib.BPETokenizer)
  assert tok.merges == data.tok.merges and len(tok.merges) == MERGES
  # the MLM windows re-tokenized with the read-back tokenizer: equal ids
  again = text_datasets.load_text(
      "kjv", 32, "mlm", str(tmp_path / "tfds"), dirs["kjv"], tokenizer=tok)
  np.testing.assert_array_equal(again.train_x, data.train_x)
  assert data.train_x.max() >= 260  # merged ids are really in use
  # transfer's data loader tokenizes with the checkpoint's BPE ...
  cfg = config.default_config("tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  cfg.init.checkpoint = ckpt
  cfg.transfer.dirs = (f"rotten_tomatoes={dirs['rotten_tomatoes']},"
                       f"mlm={dirs['kjv']}")
  cfg.transfer.max_train, cfg.transfer.max_eval = 0, 0
  cfg.transfer.batch_size = 4
  meta = init_checkpoint.read_meta(ckpt)
  got = transfer.load_task_data(cfg, meta, "rotten_tomatoes")
  assert got.tokenizer == "bpe" and got.vocab_size == 260 + MERGES
  want = text_datasets.load_text(
      "rotten_tomatoes", 32, "classification", str(tmp_path / "tfds"),
      dirs["rotten_tomatoes"], tokenizer=data.tok)
  np.testing.assert_array_equal(got.test_x, want.test_x)
  # its MLM task: the pre-training's windows exactly, not bytes' (the
  # comparison can fail)
  mlm = transfer.load_task_data(cfg, meta, "mlm")
  np.testing.assert_array_equal(mlm.train_x, data.train_x)
  as_bytes = text_datasets.load_text(
      "kjv", 32, "mlm", str(tmp_path / "tfds"), dirs["kjv"],
      tokenizer="bytes")
  assert as_bytes.train_x.shape != mlm.train_x.shape or not np.array_equal(
      as_bytes.train_x, mlm.train_x)
  # the MLM task draws its [MASK] / special ids from the tokenizer
  task = pretrain.mlm_task(got)
  assert (task.vocab_size, task.mask_id, task.num_special) == (
      260 + MERGES, 3, 4)


def test_old_checkpoints_without_a_tokenizer_file_are_bytes(tmp_path):
  from test_pretrain import _save_mlm_checkpoint
  _save_mlm_checkpoint(tmp_path / "old")
  assert not os.path.exists(tmp_path / "old" / init_checkpoint.TOKENIZER)
  assert isinstance(init_checkpoint.tokenizer_of(str(tmp_path / "old")),
                    tokenizer_lib.ByteTokenizer)


def test_mismatched_bpe_vocabulary_is_one_line(tmp_path):
  dirs = write_fixtures(str(tmp_path / "fixtures"))
  _, ckpt = _bpe_checkpoint(tmp_path, dirs)
  path = os.path.join(ckpt, init_checkpoint.TOKENIZER)
  saved = json.load(open(path))
  # fewer merges than the checkpoint's embedding rows
  json.dump({**saved, "merges": saved["merges"][:-1]}, open(path, "w"))
  with pytest.raises(ConfigError, match="vocabulary mismatch.*"
                     f"{260 + MERGES - 1} tokens") as e:
    init_checkpoint.tokenizer_of(ckpt)
  assert "\n" not in str(e.value)
  # same size, other merges: the hash in pretrained.json catches it
  other = saved["merges"][:-1] + [[4 + ord("q"), 4 + ord("z")]]
  json.dump({**saved, "merges": other}, open(path, "w"))
  with pytest.raises(ConfigError, match="vocabulary mismatch.*hash"):
    init_checkpoint.tokenizer_of(ckpt)
  os.remove(path)
  with pytest.raises(ConfigError, match="vocabulary mismatch.*missing"):
    init_checkpoint.tokenizer_of(ckpt)
  open(path, "w").write("{not json")
  with pytest.raises(ConfigError, match="unreadable"):
    init_checkpoint.tokenizer_of(ckpt)
  # transfer refuses it before claiming the workdir
  cfg = config.default_config("tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  cfg.init.checkpoint = ckpt
  cfg.transfer.dirs = (f"rotten_tomatoes={dirs['rotten_tomatoes']},"
                       f"mlm={dirs['kjv']}")
  with pytest.raises(ConfigError, match="vocabulary mismatch"):
    transfer.run(cfg, str(tmp_path / "run"), progress=False)
  assert not os.path.exists(tmp_path / "run" / "config.json")


def test_pretrain_tokenizer_settings_name_the_key(tmp_path):
  cfg = config.default_config("tiny")
  cfg.pretrain.tokenizer = "wordpiece"
  with pytest.raises(ConfigError, match="pretrain.tokenizer=wordpiece"):
    settings.validate(cfg)
  cfg.pretrain.tokenizer = "sentencepiece"
  with pytest.raises(ConfigError, match="pretrain.tokenizer"):
    settings.validate(cfg)
  cfg.pretrain.tokenizer, cfg.pretrain.bpe_merges = "bpe", 0
  with pytest.raises(ConfigError, match="pretrain.bpe_merges"):
    settings.validate(cfg)
  # naming a trained tokenizer other than the checkpoint's is one line
  from test_pretrain import _save_mlm_checkpoint
  _save_mlm_checkpoint(tmp_path / "old")
  cfg.pretrain.bpe_merges, cfg.init.checkpoint = 10, str(tmp_path / "old")
  with pytest.raises(ConfigError, match="pre-trained with 'bytes'"):
    pretrain.check_tokenizer(cfg)


# --- a Hugging Face folder through `transfer` --------------------------------
HF_VOCAB = ("[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",
            "lord", "said", "un", "##to", "and", "of", "a", "is", "good",
            "bad", "film", "movie", "fresh", ",", ".", "!", "i", "it", "s",
            "##s", "##ed", "##ing", "t", "e", "##e", "##t", "o", "##o", "n",
            "##n", "to", "in", "my")


def _hf_folder(tmp_path):
  import test_hf_import as hf
  assert len(HF_VOCAB) == hf.V
  path = tmp_path / "hf_bert"
  path.mkdir()
  hf.write_dir(path, hf.tiny_bert(seed=1))
  (path / "vocab.txt").write_text("\n".join(HF_VOCAB) + "\n")
  return str(path)


def test_hf_folder_tokenizer_is_its_wordpiece_vocab(tmp_path):
  folder = _hf_folder(tmp_path)
  tok = init_checkpoint.tokenizer_of(folder)
  assert isinstance(tok, tokenizer_lib.WordPieceTokenizer)
  assert (tok.vocab_size, tok.mask_id, tok.num_special) == (40, 5, 6)
  assert [HF_VOCAB[i] for i in tok.encode("The lord said unto")] == [
      "the", "lord", "said", "un", "##to"]
  chunks = tok.chunks("the lord said unto the lord", 5)
  assert chunks[0].tolist() == [3, 6, 7, 8, 4]  # [CLS] ... [SEP]
  os.remove(os.path.join(folder, "vocab.txt"))
  with pytest.raises(ConfigError, match="no vocab.txt"):
    init_checkpoint.tokenizer_of(folder)
  (tmp_path / "hf_bert" / "vocab.txt").write_text("\n".join(HF_VOCAB[:-1]))
  with pytest.raises(ConfigError, match="vocabulary mismatch.*39 tokens"):
    init_checkpoint.tokenizer_of(folder)


@pytest.mark.slow
def test_hf_folder_runs_through_transfer_tiny(tmp_path):
  folder = _hf_folder(tmp_path)
  dirs = write_fixtures(str(tmp_path / "fixtures"))
  cfg = config.default_config("tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  cfg.init.checkpoint = folder
  t = cfg.transfer
  t.dirs = f"rotten_tomatoes={dirs['rotten_tomatoes']},mlm={dirs['kjv']}"
  t.max_train, t.max_eval, t.batch_size = 0, 0, 4
  t.steps, t.eval_every, t.warmup_steps, t.rounds = 4, 2, 1, 1
  cfg.train.cpu_devices = 0
  wd = str(tmp_path / "run")
  summary = transfer.run(cfg, wd, progress=False)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md"):
    assert os.path.exists(os.path.join(wd, name)), name
  assert summary.tasks == ["rotten_tomatoes", "mlm"]
  assert {(r["task"], r["arm"]) for r in summary.rows} >= {
      ("rotten_tomatoes", "dense"), ("mlm", "imp")}
  for r in summary.rows:
    acc = r["test_accuracy"]["mean"]
    assert 0.0 <= acc <= 1.0 and np.isfinite(acc), r


@pytest.mark.slow
def test_pretrain_bpe_tiny_saves_and_reuses_its_tokenizer(tmp_path,
                                                         monkeypatch):
  from test_pretrain import _tiny
  cfg = _tiny(tmp_path)
  cfg.pretrain.tokenizer, cfg.pretrain.bpe_merges = "bpe", MERGES
  cfg.pretrain.finetune_seeds = 1
  seen = []
  real = text_datasets.load_text

  def spy(*a, **k):
    out = real(*a, **k)
    seen.append(out)
    return out
  monkeypatch.setattr(text_datasets, "load_text", spy)
  wd = str(tmp_path / "run")
  summary = pretrain.run(cfg, wd, progress=False)
  assert summary.tokenizer == "bpe" and summary.vocab_size == 260 + MERGES
  meta = init_checkpoint.read_meta(wd)
  assert meta["tokenizer"] == "bpe" and meta["vocab_size"] == 260 + MERGES
  saved = init_checkpoint.tokenizer_of(wd)
  assert [d.task for d in seen] == ["mlm", "classification"]
  assert seen[0].tok.merges == saved.merges == seen[1].tok.merges
  assert seen[0].train_x.max() >= 260  # merged ids are in use
  assert seen[1].vocab_size == 260 + MERGES  # the classifier's embedding
