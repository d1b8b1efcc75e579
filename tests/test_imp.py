"""IMP: densities, rewinding exactness, one-shot, all rewind modes."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config
from jaxticket.core import checkpoint, masks
from jaxticket.experiments.imp import imp
from jaxticket.experiments import common
from jaxticket.core import loop as loop_lib


def tiny(**overrides):
  cfg = config.default_config("tiny")
  cfg.model.width = 0.25
  return config.set_values(cfg, overrides)


@pytest.mark.parametrize("schedule", ["iterative", "oneshot"])
def test_densities_follow_schedule(tmp_path, schedule):
  cfg = tiny(**{"imp.levels": 3, "imp.schedule": schedule,
                "imp.output_prune_fraction": -1.0})
  summary = imp.run(cfg, str(tmp_path), progress=False)
  densities = [r["density"] for r in summary["levels"]]
  expected = [0.8 ** l for l in range(4)]
  np.testing.assert_allclose(densities, expected, atol=2e-3)
  # Saved masks agree with the summary, per seed.
  for level in range(4):
    saved = imp.load_level(str(tmp_path), level)
    d = jax.vmap(masks.density)(saved["mask"])
    np.testing.assert_allclose(d, summary["levels"][level]["density_per_seed"],
                               atol=1e-6)


def test_iterative_masks_are_nested_and_output_rate(tmp_path):
  cfg = tiny(**{"imp.levels": 2, "imp.output_prune_fraction": 0.1})
  imp.run(cfg, str(tmp_path), progress=False)
  m1 = imp.load_level(str(tmp_path), 1)["mask"]
  m2 = imp.load_level(str(tmp_path), 2)["mask"]
  for a, b in zip(jax.tree.leaves(m1), jax.tree.leaves(m2)):
    assert not (np.asarray(b) & ~np.asarray(a)).any()  # pruned stay pruned
  head = np.asarray(m2["head"]["kernel"]).reshape(2, -1).mean(1)
  body = np.asarray(m2["Dense_0"]["kernel"]).reshape(2, -1).mean(1)
  np.testing.assert_allclose(head, 0.9 ** 2, atol=0.02)
  assert (body < 0.7).all()  # the body is pruned at the global 20% rate


def make_states(cfg):
  s = common.setup(cfg)
  init = s.trainer.init(loop_lib.replica_keys(s.seeds))
  mask = jax.vmap(masks.ones)(init.params)
  at_k, _ = s.trainer.run(common.copy_tree(init), s.hparams, 5)
  trained, _ = s.trainer.run(common.copy_tree(at_k), s.hparams, 10)
  mask = imp.prune_masks(s, trained.params, mask, 0.5, None)
  return s, init, at_k, trained, mask


@pytest.mark.parametrize("mode", ["init", "step", "lr", "finetune"])
def test_rewind_restores_exact_values(mode):
  cfg = tiny(**{"imp.rewind": mode, "imp.rewind_step": 5})
  s, init, at_k, trained, mask = make_states(cfg)
  expected_source = {"init": init, "step": at_k}.get(mode, trained)
  state = imp.rewind(cfg, trained, init, at_k, mask, s.trainer)
  survivors = 0
  for p, src, m in zip(jax.tree.leaves(state.params),
                       jax.tree.leaves(expected_source.params),
                       jax.tree.leaves(jax.tree.map(
                           lambda m, p: jnp.ones(p.shape, bool) if m is None
                           else m, mask, init.params,
                           is_leaf=lambda x: x is None))):
    p, src, m = map(np.asarray, (p, src, m))
    np.testing.assert_array_equal(p[m], src[m])  # survivors: exact values
    assert (p[~m] == 0).all()
    survivors += m.sum()
  assert survivors > 0
  assert (np.asarray(state.step) == (0 if mode == "init" else 5)).all()
  np.testing.assert_array_equal(jax.random.key_data(state.data_key),
                                jax.random.key_data(init.data_key))
  for leaf in jax.tree.leaves(state.opt_state):  # fresh optimizer
    assert not np.asarray(leaf).any()


def test_rewind_point_is_the_dense_run_at_step_k(tmp_path):
  cfg = tiny(**{"imp.levels": 1, "imp.rewind": "step", "imp.rewind_step": 7})
  imp.run(cfg, str(tmp_path), progress=False)
  saved = checkpoint.load_tree(os.path.join(tmp_path, "checkpoints", "rewind"))
  s = common.setup(cfg)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  state, _ = s.trainer.run(state, s.hparams, 7)
  for a, b in zip(jax.tree.leaves(saved["params"]),
                  jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["lr", "finetune"])
def test_other_rewind_modes_run(tmp_path, mode):
  cfg = tiny(**{"imp.levels": 1, "imp.rewind": mode, "imp.rewind_step": 10})
  summary = imp.run(cfg, str(tmp_path), progress=False)
  assert summary["rewind"] == mode and len(summary["levels"]) == 2
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  level1 = [r for r in rows if r["level"] == 1]
  assert min(r["step"] for r in level1) > 10  # trained from step k on
  assert max(r["step"] for r in level1) == cfg.train.steps


def test_finetune_lr_is_a_fraction_of_the_lr_with_the_schedule_replayed(
    tmp_path):
  """imp.rewind=finetune fine-tunes at imp.finetune_lr_fraction x train.lr
  with the training schedule replayed (same program), or at
  imp.finetune_lr held constant; never at the cosine schedule's last LR
  (~0), which left the weights where pruning put them."""
  cfg = tiny(**{"imp.levels": 1, "imp.rewind": "finetune"})
  s = common.setup(cfg)
  trainer, hp = imp.finetune_setup(s)
  assert trainer is s.trainer  # replay: the same compiled program
  np.testing.assert_allclose(np.asarray(hp.lr), 0.1 * cfg.train.lr,
                             rtol=1e-6)
  const = tiny(**{"imp.rewind": "finetune", "imp.finetune_lr": 0.02,
                  "imp.finetune_schedule": "constant"})
  s2 = common.setup(const)
  trainer2, hp2 = imp.finetune_setup(s2)
  assert trainer2.recipe.schedule == "constant"
  np.testing.assert_allclose(np.asarray(hp2.lr), 0.02)
  # End to end: fine-tuning moves the surviving weights.
  imp.run(cfg, str(tmp_path), progress=False)
  before = imp.load_level(str(tmp_path), 0)
  after = imp.load_level(str(tmp_path), 1)
  masked = jax.vmap(masks.apply)(before["params"], after["mask"])
  k0 = np.asarray(masked["Dense_0"]["kernel"])
  k1 = np.asarray(after["params"]["Dense_0"]["kernel"])
  assert np.linalg.norm(k1 - k0) > 0.01 * np.linalg.norm(k0)
