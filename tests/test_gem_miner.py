"""GEM-MINER (models/gem_miner.py, experiments/pai/gem.py), each property
reduced to something known: scores stay in [0, 1] after every step (and
leave it without the projection); the freeze counts follow the schedule and
the final density is the target exactly (the count every PaI method
keeps); freezing equals a NumPy re-implementation of "freeze the smallest
live |p|"; at density 1 with all p > 1/2 the learned net is the dense
frozen net bit for bit; the frozen weights never move; replicas of several
densities in one program equal their sequential runs; the L2 penalty as
weight decay 2 lambda is the gradient of lambda ||p||^2; the pai entry
builds exact masks in one program and resumes its stage."""

import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config, models, tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import masks as masks_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.models import gem_miner as gm
from jaxticket.models import supermask as sm
from jaxticket.pruning import rounds


def _flat(params):
  return {"/".join(k): np.asarray(v)
          for k, v in traverse_util.flatten_dict(dict(params)).items()}


def _program(steps, period, freezes, project=True, name="lenet_300_100"):
  body = models.build(name, 10, width=0.2, input_shape=(40, 1))
  rule = gm.GemMinerRule()
  model = sm.Supermask(body, rule, keep=1.0)
  recipe = optim.Recipe(steps=steps, batch_size=32, optimizer="sgd",
                        schedule="cosine")
  prog = step_lib.Program(
      model, tasks.get("classification"), recipe,
      lambda x: x.astype(jnp.float32),
      parametrization=Parametrization.scores(
          sm.projection(rule) if project else None),
      updater=gm.IterativeFreezing(period, freezes), prunable=gm.SCORES)
  return body, model, prog


def _start(trainer, seeds, densities):
  state = trainer.init(loop_lib.replica_keys(seeds))
  params = sm.with_keep(state.params, np.asarray(densities, np.float32))
  return trainer.restart(state.replace(params=params))


def _scores(params):
  return {k: v for k, v in _flat(params).items() if k.endswith("scores")}


def _live(mask):
  """[R] live (never frozen) weights of a stacked flag."""
  return np.asarray(jax.vmap(lambda m: masks_lib.count(m)[0])(mask))


def test_rule_is_a_threshold_with_a_straight_through_gradient():
  rule = gm.GemMinerRule()
  p = jnp.array([0.0, 0.3, 0.5, 0.5001, 1.0])
  np.testing.assert_array_equal(np.asarray(rule.masks([p], None)[0]),
                                [0, 0, 0, 1, 1])
  c = jnp.arange(1.0, 6.0)
  g = jax.grad(lambda q: jnp.sum(rule.masks([q], None)[0] * c))(p)
  np.testing.assert_array_equal(np.asarray(g), np.asarray(c))  # identity
  np.testing.assert_array_equal(
      np.asarray(rule.project(jnp.array([-0.2, 0.5, 1.3]))), [0, 0.5, 1])
  s = rule.init_scores(jax.random.key(0), (300, 40))
  assert float(s.min()) >= 0 and float(s.max()) < 1
  assert abs(float(s.mean()) - 0.5) < 0.01


@pytest.mark.parametrize("project", [
    pytest.param(True, marks=pytest.mark.slow), False])
def test_scores_stay_in_the_unit_interval_after_every_step(mnist1d, project):
  """Large steps (lr 3) push scores out of [0, 1]; the projection puts them
  back after EVERY step (checked step by step), without it they leave."""
  _, _, prog = _program(8, 3, 2, project)
  trainer = loop_lib.Trainer(prog, mnist1d, shard=False)
  state = _start(trainer, [0, 1], [0.2, 0.05])
  hp = optim.stack_hparams([3.0, 3.0], [0.0, 0.0])
  lo, hi, at_bounds = [], [], 0
  for _ in range(8):
    state, _ = trainer.run(state, hp, 1)
    scores = _scores(jax.device_get(state.params)).values()
    lo.append(min(s.min() for s in scores))
    hi.append(max(s.max() for s in scores))
    at_bounds += sum(int(((s == 0) | (s == 1)).sum()) for s in scores)
  assert trainer.traces["run"] == 1
  if project:
    assert min(lo) >= 0 and max(hi) <= 1
    assert at_bounds > 0  # the projection acted
  else:
    assert min(lo) < 0 or max(hi) > 1


def test_freezes_follow_the_schedule_and_end_exactly_at_the_target(mnist1d):
  steps, period = 13, 3
  freezes = gm.schedule(steps, period)
  assert freezes == 4  # after steps 3, 6, 9, 12; step 13 trains on
  _, model, prog = _program(steps, period, freezes)
  trainer = loop_lib.Trainer(prog, mnist1d, shard=False)
  densities = [0.3, 0.05, 0.01, 0.3]
  state = _start(trainer, [0, 0, 1, 1], densities)
  total = int(_live(state.mask)[0])
  assert (_live(state.mask) == total).all()  # every weight live at first
  hp = optim.stack_hparams([0.1] * 4, [2e-4] * 4)
  live = [_live(state.mask)]
  for _ in range(steps):
    state, _ = trainer.run(state, hp, 1)
    live.append(_live(state.mask))
  final = [int(rounds.global_counts(
      {"a": jnp.zeros(total)}, d)["body"]) for d in densities]
  for t in range(1, steps + 1):
    k = min(t // period, freezes)
    want = [total if k == 0 else int(gm.freeze_count(total, d, k, freezes))
            for d in densities]
    np.testing.assert_array_equal(live[t], want, err_msg=f"after step {t}")
  np.testing.assert_array_equal(live[-1], final)
  # frozen scores are held at exactly 0, so their forward mask is 0
  flat_p, flat_m = _flat(jax.device_get(state.params)), _flat(state.mask)
  for path, p in _scores(jax.device_get(state.params)).items():
    assert (p[~flat_m[path]] == 0).all()
  # the masks handed to weight training: the flag, or flag * [p > 1/2]
  body_params = {k: {kk: vv[0] for kk, vv in v.items() if kk != "scores"}
                 for k, v in jax.device_get(state.params).items()
                 if isinstance(v, dict)}
  like = masks_lib.ones(body_params, r"(^|/)kernel$")
  flag = gm.kernel_masks(state.params, state.mask, like, "flag")
  rounded = gm.kernel_masks(state.params, state.mask, like, "rounded")
  np.testing.assert_array_equal(_live(flag), final)
  assert (_live(rounded) <= _live(flag)).all()
  for path in ("Dense_0", "Dense_1", "head"):
    np.testing.assert_array_equal(
        np.asarray(rounded[path]["kernel"]),
        flat_m[f"{path}/scores"] & (flat_p[f"{path}/scores"] > 0.5))
  assert rounded["Dense_0"]["bias"] is None


def _numpy_freeze(scores, alive, k):
  """Keep the k live weights with the largest |p| (all layers together);
  ties: the lower flattened index is frozen first."""
  p = np.concatenate([np.abs(s).ravel() for s in scores])
  a = np.concatenate([m.ravel() for m in alive])
  order = np.lexsort((np.arange(p.size), p))  # ascending |p|, then index
  order = [i for i in order if a[i]]
  keep = np.zeros(p.size, bool)
  keep[order[len(order) - k:] if k else []] = True
  out, start = [], 0
  for s in scores:
    out.append(keep[start:start + s.size].reshape(s.shape))
    start += s.size
  return out


@pytest.mark.parametrize("density", [0.5, 0.1, 0.013])
def test_a_freeze_equals_a_numpy_reference(density):
  rng = np.random.default_rng(int(density * 1000))
  shapes = [(20, 7), (7, 3)]
  # quantized scores: many ties, zeros (clipped) among live and frozen
  scores = [np.round(rng.uniform(-0.1, 1.0, s).clip(0, 1) * 8) / 8
            for s in shapes]
  alive = [rng.uniform(size=s) < 0.8 for s in shapes]
  scores = [np.where(a, s, 0.0).astype(np.float32)
            for s, a in zip(scores, alive)]
  params = {"a": {"scores": scores[0], "kernel": np.ones(shapes[0])},
            "b": {"scores": scores[1], "kernel": np.ones(shapes[1])},
            "keep": np.float32(density)}
  mask = {"a": {"scores": alive[0], "kernel": None},
          "b": {"scores": alive[1], "kernel": None}, "keep": None}
  upd = gm.IterativeFreezing(period=4, freezes=3)
  total = sum(int(np.prod(s)) for s in shapes)
  for k in (1, 2, 3):
    step = jnp.int32(4 * k - 1)
    assert bool(upd.is_update_step(step))
    assert not bool(upd.is_update_step(step + 1))
    new, _ = jax.jit(upd.update)(step, params, None, mask, (), None)
    target = int(gm.freeze_count(total, density, k, 3))
    target = min(target, int(sum(a.sum() for a in alive)))
    want = _numpy_freeze(scores, alive, target)
    np.testing.assert_array_equal(np.asarray(new["a"]["scores"]), want[0])
    np.testing.assert_array_equal(np.asarray(new["b"]["scores"]), want[1])
    assert new["keep"] is None and new["a"]["kernel"] is None
  assert not bool(upd.is_update_step(jnp.int32(15)))  # only 3 freezes


@pytest.mark.slow
def test_density_one_with_every_p_above_half_is_the_dense_frozen_net(mnist1d):
  """theta_0 under GEM-MINER's mask with all p > 1/2 computes exactly the
  dense net; trained at target density 1 (no freezing) with the scores
  kept above 1/2, it still does, and the flag keeps every weight."""
  body, model, prog = _program(10, 3, 3)
  x = jnp.asarray(mnist1d.normalize(mnist1d.test_x[:64]))
  theta0 = jax.jit(body.init)(jax.random.key(7), x)["params"]
  params = gm.merge_weights(theta0, jax.jit(model.init)(
      jax.random.key(8), x)["params"])
  assert set(_flat(params)) == set(_flat(theta0)) | {
      "Dense_0/scores", "Dense_1/scores", "head/scores", "keep"}
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: 0.51 + 0.49 * v if p[-1].key == "scores" else v, params)
  dense = jax.jit(body.apply)({"params": theta0}, x)
  got = jax.jit(model.apply)({"params": params}, x)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(dense))
  # trained: density 1, no L2, tiny steps (p stays > 1/2)
  trainer = loop_lib.Trainer(prog, mnist1d, shard=False)
  state = trainer.init(loop_lib.replica_keys([0]))
  stacked = jax.tree.map(lambda a: a[None], params)
  state = trainer.restart(state.replace(params=sm.with_keep(stacked, [1.0])))
  hp = optim.stack_hparams([1e-3], [0.0])
  state, _ = trainer.run(state, hp, 10)
  one = jax.tree.map(lambda a: a[0], jax.device_get(state.params))
  assert min(s.min() for s in _scores(one).values()) > 0.5
  assert (np.asarray(_live(state.mask)) == masks_lib.count(
      jax.tree.map(lambda a: a[0], state.mask))[1]).all()
  assert any((_scores(one)[k] != _scores(jax.device_get(params))[k]).any()
             for k in _scores(one))  # the scores did train
  np.testing.assert_array_equal(
      np.asarray(jax.jit(model.apply)({"params": one}, x)), np.asarray(dense))


@pytest.mark.parametrize("name", [
    "lenet_300_100", pytest.param("resnet1d", marks=pytest.mark.slow)])
def test_frozen_weights_are_bit_identical_during_the_score_phase(mnist1d,
                                                                 name):
  _, _, prog = _program(12, 4, 2, name=name)
  trainer = loop_lib.Trainer(prog, mnist1d, shard=False)
  state = _start(trainer, [0, 1], [0.1, 0.02])
  before = _flat(jax.device_get(state.params))
  hp = optim.stack_hparams([0.1] * 2, [2e-4] * 2)
  state, _ = trainer.run(state, hp, 12)
  after = _flat(jax.device_get(state.params))
  for path in before:
    if path.endswith("scores"):
      assert (before[path] != after[path]).mean() > 0.5, path
    else:  # kernels, biases, keep, BatchNorm scale/offset
      np.testing.assert_array_equal(before[path], after[path], err_msg=path)
  # the optimizer holds moments for the scores only
  assert sorted(x.shape for x in jax.tree.leaves(state.opt_state)
                if x.ndim > 1) == sorted(
                    v.shape for k, v in before.items() if k.endswith("scores"))


def test_replicas_of_several_densities_equal_their_sequential_runs(mnist1d):
  _, _, prog = _program(9, 3, 2)
  trainer = loop_lib.Trainer(prog, mnist1d, shard=False)
  seeds, dens = [3, 4, 3], [0.2, 0.05, 0.01]
  hp = lambda r: optim.stack_hparams([0.2] * r, [2e-4] * r)
  both, _ = trainer.run(_start(trainer, seeds, dens), hp(3), 9)
  for r, (seed, d) in enumerate(zip(seeds, dens)):
    one, _ = trainer.run(_start(trainer, [seed], [d]), hp(1), 9)
    for a, b in zip(jax.tree.leaves(one.mask), jax.tree.leaves(both.mask)):
      np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[r])
    for a, b in zip(jax.tree.leaves(one.params),
                    jax.tree.leaves(both.params)):
      np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b)[r],
                                 rtol=2e-5, atol=2e-6)


def test_weight_decay_two_lambda_is_the_gradient_of_the_l2_penalty():
  """One SGD step on the scores with coupled decay wd = 2 lambda equals a
  step on loss + lambda ||p||^2 (the authors' regularizer, wd 0)."""
  recipe = optim.Recipe(steps=10, optimizer="sgd", momentum=0.9)
  p = {"scores": jnp.linspace(0.0, 1.0, 7)}
  g = {"scores": jnp.sin(jnp.arange(7.0))}
  lam, lr = 3e-2, 0.5
  ours = optim.make_optimizer(recipe, optim.HParams(jnp.float32(lr),
                                                    jnp.float32(2 * lam)))
  upd, _ = ours.update(g, ours.init(p), p)
  penalty = jax.grad(lambda q: lam * jnp.sum(q["scores"] ** 2))(p)
  theirs = optim.make_optimizer(recipe, optim.HParams(jnp.float32(lr),
                                                      jnp.float32(0.0)))
  want, _ = theirs.update(jax.tree.map(jnp.add, g, penalty), theirs.init(p),
                          p)
  np.testing.assert_allclose(np.asarray(upd["scores"]),
                             np.asarray(want["scores"]), rtol=1e-6)


@pytest.mark.slow
def test_pai_builds_exact_gem_masks_in_one_program_and_resumes(tmp_path):
  from jaxticket.core.workdir import Workdir
  from jaxticket.experiments import common
  from jaxticket.experiments.pai import gem, methods, pai
  cfg = config.set_values(config.load("configs/mnist1d_lenet.py:tiny"), {
      "pai.methods": ("gem_miner",), "pai.densities": (0.1, 0.01),
      "train.steps": 12, "train.eval_every": 6})
  seeds = pai.seeds_of(cfg)
  s = common.setup(cfg)
  inits = pai.make_inits(s, seeds)
  one = masks_lib.ones(jax.tree.map(lambda a: a[0], inits.scored.params))
  paths = pai.forward_order(s, one)
  wd = Workdir(str(tmp_path), "pai")
  got = pai.build_masks(cfg, s, inits, seeds, [0.1, 0.01], one, paths,
                        "gem_miner", "clean", wd)
  total = masks_lib.count(one)[1]
  np.testing.assert_array_equal(
      _live(got), [round(0.1 * total)] * 2 + [round(0.01 * total)] * 2)
  sched = gem.schedule_of(cfg, s.data)
  assert sched.freezes >= 1
  _, trainer = methods.METHODS["gem_miner"].trainer(
      cfg, s.trainer.prog, s.data, "clean", sched)
  assert trainer.traces["run"] == 1  # 2 chunks of 6 steps, one program
  assert (tmp_path / "stages" / "gem_miner_clean.json").exists()
  # a rerun reads the finished stage (flag included) instead of training
  again = pai.build_masks(cfg, s, inits, seeds, [0.1, 0.01], one, paths,
                          "gem_miner", "clean", wd)
  assert trainer.traces["run"] == 1
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)
  # a corrupted-data check trains the scores on the corrupted set
  rl = pai.build_masks(cfg, s, inits, seeds, [0.1, 0.01], one, paths,
                       "gem_miner", "random_labels", wd)
  np.testing.assert_array_equal(_live(rl), _live(got))
  assert any((np.asarray(a) != np.asarray(b)).any()
             for a, b in zip(jax.tree.leaves(rl), jax.tree.leaves(got)))


def test_corrupted_training_sets_for_the_score_phase(mnist1d):
  from jaxticket.experiments.pai import scoring
  assert scoring.dataset(mnist1d, 0, "clean") is mnist1d
  rl = scoring.dataset(mnist1d, 0, "random_labels")
  np.testing.assert_array_equal(rl.train_x, mnist1d.train_x)
  assert (rl.train_y != mnist1d.train_y).mean() > 0.8  # 9 in 10 differ
  assert set(np.unique(rl.train_y)) <= set(range(10))
  sp = scoring.dataset(mnist1d, 0, "shuffled_pixels")
  flat, orig = (np.asarray(d.train_x).reshape(len(d.train_y), -1)
                for d in (sp, mnist1d))
  np.testing.assert_array_equal(np.sort(flat, 1), np.sort(orig, 1))
  assert (flat != orig).any(1).mean() > 0.99  # each example permuted
  assert (sp.train_y != mnist1d.train_y).mean() > 0.8  # and labels random
  half = scoring.dataset(mnist1d, 0, "half_data")
  assert len(half.train_y) == len(mnist1d.train_y) // 2
  for d in (rl, sp, half):  # evaluation splits untouched
    np.testing.assert_array_equal(d.test_x, mnist1d.test_x)
    np.testing.assert_array_equal(d.val_y, mnist1d.val_y)
  again = scoring.dataset(mnist1d, 0, "shuffled_pixels")
  np.testing.assert_array_equal(again.train_x, sp.train_x)  # seeded


@pytest.mark.slow
def test_pai_end_to_end_with_gem_miner(tmp_path):
  """`jaxticket pai` with gem_miner: its masks get every Su et al. check
  and a verdict, the stages are written, and a rerun returns the run."""
  import json
  from jaxticket.experiments.pai import pai
  cfg = config.set_values(config.load("configs/mnist1d_lenet.py:tiny"), {
      "pai.methods": ("random", "gem_miner"), "pai.densities": (0.1,)})
  wd = tmp_path / "run"
  summary = pai.run(cfg, str(wd), progress=False)
  gem = next(r for r in summary.rows if r["method"] == "gem_miner")
  assert set(gem["settings"]) == {"pai", "shuffle", "reinit",
                                  "random_labels", "shuffled_pixels",
                                  "half_data"}
  assert abs(sum(gem["layer_densities"].values()) / 3 - 0.1) < 0.05
  assert {v["method"] for v in summary.verdicts} == {"random", "gem_miner"}
  collapse = {c["method"]: c for c in summary.collapse}
  assert collapse["gem_miner"]["largest_compression_without_collapse"] \
      is None  # learned masks are not on the grid by default
  for v in ("clean", "random_labels", "shuffled_pixels", "half_data"):
    assert (wd / "stages" / f"gem_miner_{v}.json").exists()
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().split(
      "\n") if l]
  gem_rows = [r for r in rows if r.get("stage") == "gem_miner_clean"]
  assert {r["density"] for r in gem_rows} == {0.1}  # the target, not 1
  assert pai.run(cfg, str(wd), progress=False) == summary
