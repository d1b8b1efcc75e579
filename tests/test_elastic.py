"""`jaxticket elastic`: block mappings carry masks and weights bit for bit
(identity, stretching, squeezing), bad mappings are one-line errors, the
CIFAR configs validate, and (slow) the command end to end with its files,
an identity target that reproduces the source ticket, and resume."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import cli, config
from jaxticket import models as models_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core.checks import ConfigError
from jaxticket.core.workdir import WorkdirError
from jaxticket.experiments.elastic import elastic
from jaxticket.experiments.summaries import ElasticSummary
from jaxticket.models import block_mapping as bm

TINY = "configs/elastic_mnist1d_resnet1d.py:tiny"


def tiny(**overrides):
  return config.set_values(config.load(TINY), overrides)


@functools.lru_cache(maxsize=None)
def variables(depth: int, seed: int = 0, replicas: int = 2):
  """Stacked (params, batch_stats, random mask) of ResNet-1D at ``depth``
  blocks per stage (width 0.125), ``replicas`` seeds: the model's shapes
  (``jax.eval_shape``, no init computed) filled with NumPy random values,
  so every kernel, bias and statistic is distinct."""
  model = models_lib.build("resnet1d", 10, 0.125, depth, True,
                           input_shape=(40, 1))
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 40, 1)), train=False))
  rng = np.random.default_rng(seed)
  fill = lambda s: rng.standard_normal((replicas, *s.shape)).astype(
      np.float32)
  params = jax.tree.map(fill, shapes["params"])
  stats = jax.tree.map(lambda s: np.abs(fill(s)) + 0.1,  # variances > 0
                       shapes["batch_stats"])
  ones = jax.vmap(lambda p: masks_lib.ones(p, r".*kernel$"))(params)
  mask = jax.tree.map(lambda m: rng.random(m.shape) < 0.5, ones)
  return params, stats, mask


def equal_trees(a, b) -> bool:
  same = jax.tree.structure(a, is_leaf=lambda x: x is None) == \
      jax.tree.structure(b, is_leaf=lambda x: x is None)
  return same and all(
      np.asarray(x).dtype == np.asarray(y).dtype and
      np.array_equal(np.asarray(x), np.asarray(y))
      for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def carried(tree, m, n_src, n_dst, like):
  return elastic.carry(tree, m, n_src, n_dst, like)


@pytest.mark.parametrize("strategy", sorted(bm.STRATEGIES))
def test_identity_mapping_reproduces_the_ticket_bit_for_bit(strategy):
  params, stats, mask = variables(3)
  for m in ((bm.strategy_mapping(strategy, 3, 3),) * 2,
            bm.parse("0:0;1:1;2:2", 2), bm.parse("0:0;1:1;2:2|0:0;1:1;2:2",
                                                 2)):
    bm.check(m, 3, 3)
    for tree in (params, stats, mask):
      assert equal_trees(carried(tree, m, 3, 3, tree), tree)


def test_named_strategies_closed_forms():
  # The authors' example (ResNet-32 -> ResNet-56: 5 -> 9 blocks per stage).
  assert bm.format_mapping((bm.strategy_mapping("even", 5, 9),)) == \
      "0:0;1:1,2;2:3,4;3:5,6;4:7,8"
  assert bm.strategy_mapping("even", 5, 3) == {0: (0,), 1: (1,), 3: (2,)}
  assert bm.strategy_mapping("last", 3, 5) == {0: (0,), 1: (1,),
                                               2: (2, 3, 4)}
  assert bm.strategy_mapping("last", 5, 3) == {0: (0,), 1: (1,), 2: (2,)}
  assert bm.strategy_mapping("cycle", 3, 6) == {0: (0,), 1: (1, 3, 5),
                                                2: (2, 4)}
  with pytest.raises(ConfigError, match="never replicated"):
    bm.strategy_mapping("even", 1, 3)


@pytest.mark.parametrize("text,n_dst", [
    ("0:0;1:1,2;2:3,4", 5),  # stretch 3 -> 5, in place
    ("0:0;2:1,2,3;1:4", 5),  # stretch with re-ordering
])
def test_stretching_duplicates_exactly_the_mapped_blocks(text, n_dst):
  params, stats, mask = variables(3)
  like_p, like_s, like_m = variables(n_dst, seed=7)
  m = bm.parse(text, 2)
  bm.check(m, 3, n_dst)
  src_of = {}
  for s, stage in enumerate(m):
    for i, js in stage.items():
      for j in js:
        src_of[s * n_dst + j] = s * 3 + i
  for tree, like in ((params, like_p), (stats, like_s), (mask, like_m)):
    out = carried(tree, m, 3, n_dst, like)
    assert sorted(out) == sorted(like)
    for name in out:
      if name.startswith("BasicBlock_"):
        src = f"BasicBlock_{src_of[int(name.split('_')[1])]}"
        assert equal_trees(out[name], tree[src]), (name, src)
      else:  # stem and head copied
        assert equal_trees(out[name], tree[name])
  # Every copy of one source block is the same (masks and weights).
  out = carried(params, m, 3, n_dst, like_p)
  for j, i in src_of.items():
    for k, i2 in src_of.items():
      if i == i2:
        assert equal_trees(out[f"BasicBlock_{j}"], out[f"BasicBlock_{k}"])


def test_copies_are_the_second_and_later_targets_of_a_block():
  m = (bm.strategy_mapping("even", 3, 5),) * 2  # 0:0;1:1,2;2:3,4
  assert bm.copies(m, 5) == ["BasicBlock_2", "BasicBlock_4", "BasicBlock_7",
                             "BasicBlock_9"]
  assert bm.copies((bm.strategy_mapping("even", 3, 2),) * 2, 2) == []


def test_squeezing_removes_exactly_the_dropped_blocks():
  params, stats, mask = variables(3)
  like_p, _, like_m = variables(2, seed=7)
  m = (bm.strategy_mapping("last", 3, 2),) * 2  # drops block 2 of a stage
  for tree, like in ((params, like_p), (mask, like_m)):
    out = carried(tree, m, 3, 2, like)
    kept = {"BasicBlock_0": "BasicBlock_0", "BasicBlock_1": "BasicBlock_1",
            "BasicBlock_2": "BasicBlock_3", "BasicBlock_3": "BasicBlock_4"}
    for dst, src in kept.items():
      assert equal_trees(out[dst], tree[src])
    # The dropped blocks (2 and 5 of the source) appear nowhere.
    dropped = [np.asarray(x) for b in ("BasicBlock_2", "BasicBlock_5")
               for x in jax.tree.leaves(tree[b])]
    present = [np.asarray(x) for x in jax.tree.leaves(out)]
    for d in dropped:
      if d.dtype != bool:  # random values: unique
        assert not any(p.shape == d.shape and np.array_equal(p, d)
                       for p in present)
  # The carried mask keeps exactly the kept blocks' weights.
  out = carried(mask, m, 3, 2, like_m)
  kept_src = ["ConvBN_0", "head", "BasicBlock_0", "BasicBlock_1",
              "BasicBlock_3", "BasicBlock_4"]
  total = lambda tree: sum(int(np.sum(x)) for x in jax.tree.leaves(tree))
  assert total(out) == total({k: mask[k] for k in kept_src})


def loop_tree(tree):
  return jax.tree.map(lambda x: x[0], tree)


def test_carried_ticket_runs_in_the_target_network():
  params, stats, _ = variables(3, replicas=1)
  like_p, like_s, _ = variables(5, seed=3, replicas=1)
  m = (bm.strategy_mapping("even", 3, 5),) * 2
  p = loop_tree(carried(params, m, 3, 5, like_p))
  s = loop_tree(carried(stats, m, 3, 5, like_s))
  model = models_lib.build("resnet1d", 10, 0.125, 5, True)
  out = model.apply({"params": p, "batch_stats": s}, jnp.ones((2, 40, 1)))
  assert out.shape == (2, 10) and bool(jnp.isfinite(out).all())


@pytest.mark.parametrize("text,needle", [
    ("0:0;1:1;7:2", "source block 7"),
    ("0:0;1:1;2:9", "target block 9"),
    ("0-0;1:1", "cannot read '0-0'"),
    ("0:0;1:x", "cannot read '1:x'"),
    ("0:0;1:1", "leaves target block(s) [2]"),
    ("0:0,1;1:2", "block 0 to block 0 only"),
    ("0:0;1:1;2:1", "fills target block 1 twice"),
    ("0:0;1:1;1:2", "lists source block 1 twice"),
    ("0:0;1:1;2:2|0:0;1:1;2:2|0:0;1:1;2:2", "has 3 stage mappings"),
])
def test_bad_mapping_is_one_clear_line(tmp_path, capsys, text, needle):
  code = cli.main(["elastic", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), "--config.elastic.target_depths=3",
                   f"--config.elastic.mapping={text}"])
  err = capsys.readouterr().err
  assert code == 2
  assert "elastic.mapping" in err and needle in err, err
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
  assert not (tmp_path / "w" / "config.json").exists()


@pytest.mark.parametrize("override,needle", [
    ("--config.model.name=vgg16", "plain (VGG-style)"),
    ("--config.model.name=lenet_300_100", "elastic supports resnet1d"),
    ("--config.elastic.strategy=stretchy", "elastic.strategy"),
    ("--config.elastic.levels=5", "elastic.levels=5"),
    ("--config.elastic.pai_method=snap", "Did you mean 'snip'"),
    ("--config.elastic.methods=shuffle", "must include 'elastic'"),
    ("--config.imp.rewind=lr", "imp.rewind='lr'"),
])
def test_bad_elastic_config_is_one_clear_line(tmp_path, capsys, override,
                                              needle):
  code = cli.main(["elastic", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), override])
  err = capsys.readouterr().err
  assert code == 2 and needle in err, err
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_cifar_depth_must_be_6n_plus_2():
  cfg = config.load("configs/elastic_cifar10_resnet32.py")
  cfg.elastic.target_depths = (21,)
  with pytest.raises(ConfigError, match="elastic.target_depths=21.*6n\\+2"):
    elastic.validate(cfg)


@pytest.mark.parametrize("path", ["configs/elastic_cifar10_resnet32.py",
                                  "configs/elastic_cifar10_resnet20.py"])
def test_cifar_configs_validate_and_map_every_block(path):
  for arg in ("", ":tiny"):
    cfg = config.load(path + arg)
    elastic.validate(cfg)
    maps = elastic.mappings(cfg)
    assert set(maps) == set(cfg.elastic.target_depths)
    for depth, m in maps.items():
      stages, n = elastic.structure(cfg, depth, "d")
      assert stages == 3 and len(m) == 3 and n == (depth - 2) // 6
  cfg = config.load("configs/elastic_cifar10_resnet32.py")
  maps = elastic.mappings(cfg)
  assert bm.format_mapping(maps[56]) == "0:0;1:1,2;2:3,4;3:5,6;4:7,8"
  assert bm.format_mapping(maps[20]) == "0:0;1:1;3:2"


def test_help_describes_the_mapping(capsys):
  with pytest.raises(SystemExit):
    cli.main(["elastic", "--help"])
  out = " ".join(capsys.readouterr().out.split())
  assert "elastic.mapping" in out and "src:dst1,dst2" in out
  assert "elastic.strategy" in out


@pytest.mark.slow
def test_elastic_end_to_end_identity_and_resume(tmp_path):
  """Target depth = source depth: the transformed ticket IS the source
  ticket (same mask, theta_0, data order, recipe), so it trains to the
  source IMP level's accuracy and sits at ~0 barrier from the target IMP
  ticket (the same run). Then the contract: files, finished run returned,
  different config refused, a deleted summary recomputed from stages."""
  wd = str(tmp_path / "w")
  cfg = tiny(**{"elastic.target_depths": (3,)})
  summary = elastic.run(cfg, wd, progress=False)
  assert isinstance(summary, ElasticSummary)
  for f in ("config.json", "metrics.jsonl", "summary.json", "report.md",
            "elastic_accuracy.png", "stages/depth_3.json",
            "source/summary.json", "target_3/summary.json"):
    assert os.path.exists(os.path.join(wd, f)), f
  assert os.path.isdir(os.path.join(wd, "checkpoints"))
  rows = {(r["method"], r["level"]): r for r in summary.rows}
  assert set(m for m, _ in rows) == {"elastic", "shuffle", "random", "pai",
                                     "twin", "imp", "dense"}
  src = summary.source[1]
  el = rows[("elastic", 1)]
  assert el["density"] == pytest.approx(src["density"])
  np.testing.assert_allclose(el["test_accuracy"]["per_seed"],
                             src["test_accuracy"]["per_seed"], atol=2e-3)
  assert summary.targets[0]["run_traces"] == 1  # one program per depth
  b = summary.barriers[0]
  assert b["level"] == 1 and abs(b["test_barrier"]["mean"]) < 0.02
  assert np.isfinite(b["twin_test_barrier"]["mean"])
  # the twin differs from the ticket only in its data order
  assert rows[("twin", 1)]["density"] == el["density"]
  # A finished run is returned as is; another config is refused.
  again = elastic.run(cfg, wd, progress=False)
  assert again.to_json() == summary.to_json()
  with pytest.raises(WorkdirError, match="different config"):
    elastic.run(tiny(**{"elastic.target_depths": (3,),
                        "elastic.strategy": "last"}), wd, progress=False)
  # Resume: without summary.json the stages are read back, not retrained.
  os.remove(os.path.join(wd, "summary.json"))
  resumed = elastic.run(cfg, wd, progress=False)
  assert resumed.rows == summary.rows and resumed.barriers == \
      summary.barriers
  with open(os.path.join(wd, "replicas_depth_3.json")) as f:
    labels = json.load(f)
  assert len(labels) == 5 * 1 * 2  # methods x levels x seeds, one program


@pytest.mark.slow
def test_controls_start_where_they_should():
  """elastic / copy_shuffle / shuffle / twin start from the carried weights;
  copy_shuffle differs from the ticket only inside the copied blocks (same
  per-layer counts there); twin differs only in its data order; random and
  pai start from the target's theta_0 at the ticket's density."""
  from jaxticket.core import loop as loop_lib
  from jaxticket.experiments import common
  cfg = tiny(**{"elastic.target_depths": (5,)})
  src_p, src_s, src_m = variables(3)
  m = elastic.mappings(cfg)[5]
  tcfg = elastic.depth_config(cfg, 5)
  s = common.setup(tcfg)
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  ones = common.dense_masks(tcfg, init.params)
  # the test's variables use width 0.125 like :tiny
  weights = elastic.carry(src_p, m, 3, 5, init.params)
  stats = elastic.carry(src_s, m, 3, 5, init.batch_stats)
  ticket = elastic.carry(src_m, m, 3, 5, ones)
  copied = bm.copies(m, 5)
  methods = ["elastic", "copy_shuffle", "shuffle", "random", "pai", "twin"]
  state, mask = elastic.build_replicas(
      cfg, s, init, {1: ticket}, weights, stats, np.zeros(2, np.int32),
      methods, [1], 5, copied)
  part = lambda tree, i: jax.tree.map(lambda x: np.asarray(x)[2 * i:2 * i + 2],
                                      tree)
  el, cs, sh, rn, pa, tw = (part(mask, i) for i in range(6))
  assert equal_trees(el, ticket)
  for name in el:
    if name in copied:
      assert not equal_trees(cs[name], el[name])
      for a, b in zip(jax.tree.leaves(cs[name]), jax.tree.leaves(el[name])):
        np.testing.assert_array_equal(a.reshape(2, -1).sum(1),
                                      b.reshape(2, -1).sum(1))
    else:
      assert equal_trees(cs[name], el[name])
  dens = lambda t: masks_lib.replica_densities(t)
  for other in (sh, rn, pa):
    np.testing.assert_allclose(dens(other), dens(el), atol=2e-3)
  p = lambda i: part(state.params, i)
  assert equal_trees(p(0), jax.device_get(jax.vmap(masks_lib.apply)(
      jax.device_put(weights), jax.device_put(ticket))))
  # carried weights (masked) for elastic and twin, identical; twin's data
  # order differs
  assert equal_trees(p(0), p(5))
  keys = jax.random.key_data(state.data_key)
  assert not np.array_equal(np.asarray(keys[0]), np.asarray(keys[10]))
  np.testing.assert_array_equal(np.asarray(keys[0]), np.asarray(keys[6]))
  # random starts from the target's own theta_0 under its mask
  want = jax.vmap(masks_lib.apply)(init.params, jax.device_put(rn))
  assert equal_trees(p(3), jax.device_get(want))
