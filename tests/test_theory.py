"""Theory checks: greedy forward selection reduced to known cases (all
units = the full layer; the first greedy pick = the brute-force best unit;
the pruned narrower net = the averaged one), the teacher-student data
(loss exactly 0 at the teacher's weights through the platform's regression
task), the slope fits, ``jaxticket theory`` end to end and its bad
input."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import cli, config, models, tasks
from jaxticket.core import loop as loop_lib
from jaxticket.core import optim
from jaxticket.core import step as step_lib
from jaxticket.core.parametrization import Parametrization
from jaxticket.data import teacher as teacher_lib
from jaxticket.experiments.theory import greedy_part, teacher_part, theory
from jaxticket.subnetworks import greedy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "theory_mnist1d.py") + ":tiny"


def _net(seed=0, sizes=(6, 12, 8, 3)):
  rng = np.random.default_rng(seed)
  return greedy.Mlp([rng.normal(0, 0.5, (a, b)) for a, b in
                     zip(sizes[:-1], sizes[1:])],
                    [rng.normal(0, 0.1, b) for b in sizes[1:]])


def test_all_units_selected_is_the_full_layer():
  net = _net()
  x = np.random.default_rng(1).normal(size=(50, 6))
  for layer in (0, 1):
    act = greedy.activations(net, x, layer)
    z = greedy.averaged_input(net, layer, act,
                              greedy.subset_scale(12 if layer == 0 else 8,
                                                  range(12 if layer == 0
                                                        else 8)))
    np.testing.assert_allclose(greedy.forward_from(net, layer, z),
                               greedy.logits(net, x), atol=1e-12)


def test_pruned_narrow_net_equals_the_uniform_average():
  net = _net()
  x = np.random.default_rng(2).normal(size=(40, 6))
  chosen = [7, 1, 4]
  act = greedy.activations(net, x, 0)
  avg = greedy.forward_from(net, 0, greedy.averaged_input(
      net, 0, act, greedy.subset_scale(12, chosen)))
  pruned = greedy.prune_layer(net, 0, chosen)
  assert pruned.hidden == [3, 8]
  np.testing.assert_allclose(greedy.logits(pruned, x), avg, atol=1e-12)


def test_first_greedy_pick_is_the_brute_force_best_unit():
  net = _net(3)
  rng = np.random.default_rng(4)
  x = rng.normal(size=(64, 6))
  y = rng.integers(0, 3, 64)
  batches = iter([(x, y)] * 20)
  path = greedy.greedy_path(net, 0, batches, x, y,
                            np.random.default_rng(5), candidates=12,
                            max_units=3)
  act = greedy.activations(net, x, 0)
  losses = [greedy.evaluate(net, 0, greedy.subset_scale(12, [j]), act, y)[0]
            for j in range(12)]
  assert path.order[0] == int(np.argmin(losses))
  second = [greedy.evaluate(net, 0, greedy.subset_scale(
      12, [path.order[0], j]), act, y)[0] if j != path.order[0] else np.inf
      for j in range(12)]
  assert path.order[1] == int(np.argmin(second))
  # Recorded evaluation = the evaluation of the subset itself.
  for n in range(1, 4):
    want = greedy.evaluate(net, 0, greedy.subset_scale(12, path.order[:n]),
                           act, y)
    np.testing.assert_allclose((path.loss[n - 1], path.accuracy[n - 1]),
                               want, rtol=1e-10)
  assert len(set(path.order)) == 3  # without replacement


def test_ranked_paths_follow_their_rankings():
  net = _net(6)
  x = np.random.default_rng(7).normal(size=(30, 6))
  y = np.zeros(30, int)
  path = greedy.ranked_path(net, 0, "l1", x, y, np.random.default_rng(0))
  norms = np.abs(net.kernels[0]).sum(0)
  assert list(norms[path.order]) == sorted(norms, reverse=True)
  full = greedy.evaluate(net, 0, np.ones(12),
                         greedy.activations(net, x, 0), y)
  np.testing.assert_allclose((path.loss[-1], path.accuracy[-1]), full,
                             rtol=1e-10)
  with pytest.raises(ValueError, match="greedy, l1, random"):
    greedy.ranked_path(net, 0, "taylor", x, y, np.random.default_rng(0))


def test_each_layer_stops_relative_to_the_network_before_it(monkeypatch):
  """As the authors' prune_a_layer: layer 1 is pruned on the network layer
  0 was pruned into, and its tolerance is relative to THAT network's
  training accuracy, not the original's (no fine-tune here, so the two
  differ)."""
  net = _net(8)
  rng = np.random.default_rng(9)
  x = rng.normal(size=(200, 6))
  y = np.argmax(greedy.logits(net, x) + rng.normal(0, 0.5, (200, 3)), -1)
  cfg = config.default_config()
  g = cfg.theory.greedy
  g.finetune_steps, g.tolerance, g.candidates = 0, 0.3, 4
  cfg.train.batch_size = 50
  seen = []
  real = greedy.greedy_path

  def spy(net_, layer, *args, stop_accuracy=None, **kw):
    seen.append((layer, greedy_part.accuracy(net_, x, y), stop_accuracy))
    return real(net_, layer, *args, stop_accuracy=stop_accuracy, **kw)

  monkeypatch.setattr(greedy, "greedy_path", spy)
  out = greedy_part.prune_pipeline(cfg, None, [net], x, y, x, y, x, y)
  (l0, acc0, stop0), (l1, acc1, stop1) = seen
  assert (l0, l1) == (0, 1) and acc0 == greedy_part.accuracy(net, x, y)
  assert acc1 != acc0  # layer 0 pruned, not fine-tuned
  assert stop0 == pytest.approx(0.7 * acc0) and stop1 == pytest.approx(
      0.7 * acc1)
  assert [r["train_accuracy_before"] for r in out["rows"]] == [acc0, acc1]


def test_loss_gap_slope_fit_recovers_known_rates():
  n = np.arange(1, 201, dtype=float)
  assert greedy_part.fit_slope(n, 3.0 / n ** 2) == pytest.approx(-2, abs=1e-6)
  tail = np.where(n > 50, 1e-9, 0.5 / n)  # finite-N tail beyond N/4 ignored
  assert greedy_part.fit_slope(n, tail) == pytest.approx(-1, abs=1e-6)
  assert greedy_part.fit_slope(n[:2], 1 / n[:2]) is None


def test_teacher_data_has_zero_loss_at_the_teachers_weights():
  t = teacher_lib.make_teacher(dim=7, hidden=3, kept=2, seed=0)
  assert t.unpruned == 6 and (t.mask.sum(0) == 2).all()
  data = teacher_lib.teacher_dataset(t, 64, 16, 128, seed=1)
  assert data.task == "regression" and data.train_y.shape == (64, 1)
  np.testing.assert_array_equal(  # float64 teacher: exactly 0
      t(data.test_x).astype(np.float32), data.test_y)
  model = models.MLP((3,), 1)
  recipe = optim.Recipe(steps=1, batch_size=64)
  prog = step_lib.Program(model, tasks.get("regression"), recipe,
                          data.normalize,
                          parametrization=Parametrization(
                              teacher_part.HIDDEN),
                          prunable=teacher_part.HIDDEN)
  trainer = loop_lib.Trainer(prog, data, shard=False)
  state = trainer.init(loop_lib.replica_keys([0, 1]))
  params = dict(state.params)
  params["Dense_0"] = {"kernel": jnp.asarray(np.stack([t.weights] * 2),
                                             jnp.float32),
                       "bias": jnp.zeros((2, 3))}
  params["head"] = {"kernel": jnp.full((2, 3, 1), 1 / 3), "bias":
                    jnp.zeros((2, 1))}
  params["Dense_0"]["kernel"] = params["Dense_0"]["kernel"].at[1].add(0.3)
  ev = trainer.evaluate(state.replace(params=params))
  loss = np.asarray(ev.test_loss)
  assert loss[0] < 1e-12 < 1e-3 < loss[1]  # the teacher vs a perturbation


def test_student_masks_and_local_init():
  t = teacher_lib.make_teacher(dim=10, hidden=4, kept=3, seed=2)
  rng = np.random.default_rng(0)
  masks = teacher_part.student_masks(t, ["teacher_mask", "random_mask",
                                         "dense"], 2, rng)
  assert masks.shape == (6, 10, 4)
  assert (masks[0] == t.mask).all() and (masks[1] == t.mask).all()
  assert (masks[2:4].sum(1) == 3).all() and masks[4:].all()
  w0 = teacher_part.initial_kernels(t, masks, "local", 0.5, None, rng)
  assert (w0[~masks] == 0).all()
  rel = (np.linalg.norm(w0[0] - t.weights, axis=0)
         / np.linalg.norm(t.weights, axis=0))
  assert 0.1 < rel.mean() < 1.0
  same = teacher_part.initial_kernels(t, masks, "local", 0.0, None, rng)
  np.testing.assert_array_equal(same[0], t.weights)


@pytest.mark.slow  # ~10 s or more of compiling
def test_theory_end_to_end_small(tmp_path):
  """Both parts, one teacher cell, no fine-tune programs."""
  cfg = config.set_values(config.load(TINY), {
      "theory.greedy.finetune_steps": 0, "theory.teacher.kept": (6,),
      "theory.teacher.samples": (32,)})
  wd = tmp_path / "run"
  summary = theory.run(cfg, str(wd), progress=False)
  t = summary.teacher_student
  assert t["success"]["teacher_mask"] == [[1.0]]  # N = 32 >> K r = 12
  assert t["samples_needed"]["teacher_mask"] == [32]
  for row in summary.greedy["pruning"]["rows"]:
    assert row["before_finetune"] == row["after_finetune"]
  assert "Teacher-student" in (wd / "report.md").read_text()
  import json
  rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text().split(
      "\n") if l]
  assert {r["student"] for r in rows} == {"teacher_mask", "random_mask",
                                          "dense"}
  assert {r["step"] for r in rows} == {20, 40}


@pytest.mark.slow
def test_theory_end_to_end(tmp_path):
  cfg = config.load(TINY)
  wd = tmp_path / "run"
  summary = theory.run(cfg, str(wd), progress=False)
  for name in ("config.json", "summary.json", "report.md", "loss_gap.png",
               "phase_diagram.png", "samples_needed.png"):
    assert (wd / name).exists(), name
  g = summary.greedy
  assert [c["layer"] for c in g["curves"]] == [0, 1]
  for c in g["curves"]:
    assert len(c["greedy"]["gap"]) == len(c["sizes"]) == 6
  assert len(g["pruning"]["rows"]) == 2 * len(g["curves"])
  t = summary.teacher_student
  assert set(t["success"]) == {"teacher_mask", "random_mask", "dense"}
  assert np.array(t["success"]["teacher_mask"]).shape == (2, 2)
  assert theory.run(cfg, str(wd), progress=False).to_json() == \
      summary.to_json()


@pytest.mark.parametrize("override,needle", [
    ("--config.theory.teacher.kept=0", "theory.teacher.kept=0"),
    ("--config.theory.teacher.kept=2,99", "integers in [1, "),
    ("--config.theory.teacher.samples=()", "is empty"),
    ("--config.theory.teacher.samples=10,10", "repeats a value"),
    ("--config.theory.teacher.students=teacher", "Did you mean"),
    ("--config.theory.teacher.threshold=0", "relative test error > 0"),
    ("--config.theory.greedy.tolerance=1.5", "theory.greedy.tolerance=1.5"),
    ("--config.theory.parts=greed", "Did you mean 'greedy'"),
    ("--config.model.name=resnet20", "model for theory.greedy"),
])
def test_bad_theory_input_is_one_line(override, needle, capsys, tmp_path):
  code = cli.main(["theory", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), override])
  err = capsys.readouterr().err
  assert code == 2
  assert needle in err, err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "w").exists()
