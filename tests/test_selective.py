"""Selective classification: the gambler's loss (Liu et al. 2019), AURC and
coverage-risk curves, and the ``task`` config keys."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxticket import config as config_lib
from jaxticket import tasks
from jaxticket.core import selective
from jaxticket.core.checks import ConfigError
from jaxticket.core.task import mean_loss


def np_softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def np_risk_curve(conf, correct):
  order = np.argsort(-conf, kind="stable")
  c = correct[order]
  return np.array([1 - c[:k].mean() for k in range(1, len(c) + 1)])


def test_gambler_loss_equals_its_formula():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(64, 11)) * 3
  y = rng.integers(0, 10, size=64)
  for o in (1.5, 2.2, 9.0):
    f = np_softmax(logits)
    want = -np.log(f[np.arange(64), y] + f[:, -1] / o)
    # the paper's Eq. (6) differs by the constant log o
    paper = -np.log(o * f[np.arange(64), y] + f[:, -1])
    got, correct = tasks.Gambler(payoff=o).per_example(
        jnp.asarray(logits, jnp.float32), jnp.asarray(y))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got) - np.log(o), paper,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        correct, (logits[:, :-1].argmax(-1) == y).astype(np.float32))


def test_gambler_pretrains_with_cross_entropy_on_the_class_outputs():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(16, 4)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, size=16))
  task = tasks.Gambler(payoff=2.0, pretrain_steps=5)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], y)
  np.testing.assert_allclose(mean_loss(task, logits, y, jnp.int32(4)),
                             ce.mean(), rtol=1e-6)
  np.testing.assert_allclose(mean_loss(task, logits, y, jnp.int32(5)),
                             task.losses(logits, y).mean(), rtol=1e-6)


def expected_loss_minimizer(p, o, steps=3000):
  """Logits minimizing E_{y~p}[gambler's loss] (Adam from zeros)."""
  task = tasks.Gambler(payoff=o)
  m = len(p)
  ys = jnp.arange(m)

  def loss(z):
    outs = jnp.broadcast_to(z, (m, m + 1))
    return jnp.sum(jnp.asarray(p) * task.losses(outs, ys))

  opt = optax.adam(0.1)
  z = jnp.zeros(m + 1)
  state = opt.init(z)

  @jax.jit
  def step(z, state):
    g = jax.grad(loss)(z)
    u, state = opt.update(g, state)
    return optax.apply_updates(z, u), state

  for _ in range(steps):
    z, state = step(z, state)
  return np.asarray(jax.nn.softmax(z))


def test_gambler_with_payoff_near_one_abstains_everywhere():
  # Liu et al. Sec. 3: abstaining is optimal when o < 1 / max_y p(y|x).
  for p in ([0.5, 0.3, 0.2], [0.9, 0.05, 0.05]):
    f = expected_loss_minimizer(np.asarray(p), 1.01)
    assert f[-1] > 0.99, (p, f)
  # A larger payoff bets: for p = (0.9, .05, .05) and o = 2.2 the optimum
  # (Lagrange conditions) bets only on class 0 and keeps
  # f_abstain = o (1 - p_0) / (o - 1) = 0.1833 in reserve.
  f = expected_loss_minimizer(np.asarray([0.9, 0.05, 0.05]), 2.2)
  np.testing.assert_allclose(f, [1 - 0.22 / 1.2, 0, 0, 0.22 / 1.2],
                             atol=5e-3)


def test_perfect_classifier_has_zero_risk_at_every_coverage():
  rng = np.random.default_rng(2)
  conf = jnp.asarray(rng.uniform(size=200), jnp.float32)
  correct = jnp.ones(200)
  np.testing.assert_array_equal(selective.risk_curve(conf, correct), 0)
  assert float(selective.aurc(conf, correct)) == 0.0
  np.testing.assert_array_equal(selective.risk_at(conf, correct), 0)


def test_aurc_matches_numpy_reference_on_random_scores():
  rng = np.random.default_rng(3)
  for n in (1, 7, 300):
    conf = rng.uniform(size=n).astype(np.float32)
    conf[: n // 3] = 0.5  # ties keep the split's order
    correct = (rng.uniform(size=n) < 0.7).astype(np.float32)
    curve = np_risk_curve(conf, correct)
    np.testing.assert_allclose(selective.risk_curve(conf, correct), curve,
                               rtol=1e-6)
    np.testing.assert_allclose(selective.aurc(conf, correct), curve.mean(),
                               rtol=1e-5)
    ks = [max(1, round(c * n)) for c in selective.COVERAGES]
    np.testing.assert_allclose(selective.risk_at(conf, correct),
                               curve[np.array(ks) - 1], rtol=1e-6)


def test_a_ranking_that_answers_errors_last_beats_the_reverse():
  correct = np.array([1, 1, 1, 0, 0], np.float32)
  good = np.array([5, 4, 3, 2, 1], np.float32)
  assert float(selective.aurc(good, correct)) < float(
      selective.aurc(-good, correct))
  # full coverage: the plain error rate either way
  np.testing.assert_allclose(selective.risk_at(good, correct, (1.0,)), 0.4)


def test_softmax_confidence_of_plain_and_gambler_tasks():
  logits = jnp.asarray([[2.0, 0.0, -1.0, 5.0], [0.0, 3.0, 0.0, -4.0]])
  own, soft = tasks.Gambler(payoff=2.0).confidence(logits)
  f = np_softmax(np.asarray(logits))
  np.testing.assert_allclose(own, -f[:, -1], rtol=1e-6)
  np.testing.assert_allclose(soft, np_softmax(np.asarray(logits[:, :-1])).max(-1),
                             rtol=1e-6)
  own, soft = tasks.Classification().confidence(logits)
  np.testing.assert_allclose(own, f.max(-1), rtol=1e-6)
  np.testing.assert_allclose(soft, own)


@pytest.mark.parametrize("key,value,words", [
    ("task.loss", "hinge", "task.loss"),
    ("task.payoff", 1.0, "task.payoff"),
    ("task.pretrain_steps", -1, "task.pretrain_steps"),
])
def test_bad_task_keys_are_one_line_errors(key, value, words):
  cfg = config_lib.default_config("tiny")
  config_lib.set_values(cfg, {key: value})
  with pytest.raises(ConfigError) as err:
    config_lib.validate(cfg)
  assert words in str(err.value) and "\n" not in str(err.value)


def test_payoff_above_the_number_of_classes_and_regression_are_refused():
  with pytest.raises(ConfigError, match=r"task.payoff=11.0 .*\(1, 10\]"):
    tasks.build("classification", "gambler", 11.0, 0, num_classes=10)
  with pytest.raises(ConfigError, match="task.loss=gambler needs a "
                     "classification dataset"):
    tasks.build("regression", "gambler", 2.0, 0, num_classes=None)
  assert isinstance(tasks.build("classification", "gambler", 2.0, 3, 10),
                    tasks.Gambler)
  assert tasks.extra_outputs(tasks.build("classification", "gambler")) == 1
  assert tasks.extra_outputs(tasks.build("classification", "ce")) == 0


def gambler_cfg(**kw):
  cfg = config_lib.default_config("tiny")
  cfg.model.width = 0.25
  return config_lib.set_values(cfg, {"task.loss": "gambler",
                                     "task.payoff": 2.2,
                                     "task.pretrain_steps": 10, **kw})


@pytest.mark.slow
def test_compiled_evaluation_matches_numpy_on_the_model_outputs():
  """The trainer's test AURC / risk, computed inside the vmapped
  evaluation, equal a NumPy recomputation from each replica's outputs; the
  gambler net has one more output than the dataset has classes."""
  from jaxticket.core import loop as loop_lib
  from jaxticket.core import step as step_lib
  from jaxticket.experiments import common
  cfg = gambler_cfg()
  s = common.setup(cfg)
  state = s.trainer.init(loop_lib.replica_keys(s.seeds))
  state, _ = s.trainer.run(state, s.hparams, 30)
  ev = jax.device_get(s.trainer.evaluate(state))
  data = s.data
  for r in range(len(s.seeds)):
    params = loop_lib.tree_index(state.params, r)
    stats = loop_lib.tree_index(state.batch_stats, r)
    out, _ = step_lib.apply_model(s.trainer.prog.model, params, stats,
                                  s.trainer.prog.normalize(
                                      jnp.asarray(data.test_x)), False)
    assert out.shape[1] == data.num_classes + 1
    own, soft = (np.asarray(c) for c in s.trainer.prog.task.confidence(out))
    out = np.asarray(out, np.float64)
    correct = (out[:, :-1].argmax(-1) == data.test_y).astype(np.float64)
    np.testing.assert_allclose(own, -np_softmax(out)[:, -1], atol=1e-5)
    curve = np_risk_curve(own, correct)
    np.testing.assert_allclose(ev.test_aurc[r], curve.mean(), atol=1e-3)
    np.testing.assert_allclose(ev.test_risk[r], curve[
        [max(1, round(c * len(curve))) - 1 for c in selective.COVERAGES]],
        atol=2e-2)
    soft_curve = np_risk_curve(soft, correct)
    np.testing.assert_allclose(ev.test_aurc_softmax[r], soft_curve.mean(),
                               atol=1e-3)
    np.testing.assert_allclose(ev.test_risk[r][0], 1 - correct.mean(),
                               atol=1e-6)
    np.testing.assert_allclose(ev.test_accuracy[r], correct.mean(), atol=1e-6)
  assert s.trainer.traces["evaluate"] == 1
  s.trainer.evaluate(state)
  assert s.trainer.traces["evaluate"] == 1


@pytest.mark.slow
def test_sanity_reports_selective_metrics_of_a_gambler_net(tmp_path):
  """`jaxticket sanity` with task.loss=gambler: every setting at the checked
  level has AURC rows; the risk at full coverage is the error rate."""
  from jaxticket.experiments.sanity import sanity
  cfg = gambler_cfg(**{"imp.levels": 1, "sanity.levels": (1,),
                       "sanity.lrs": (0.3,)})
  summary = sanity.run(cfg, str(tmp_path), progress=False)
  assert summary.selective_score == "abstain"
  assert summary.task["loss"] == "gambler"
  acc = {(r["lr"], r["level"]): r for r in summary.rows}
  rows = [r for r in summary.selective if r["level"] == 1]
  assert len(rows) == 1
  for name in sanity.SETTINGS:
    cell = rows[0][name]
    assert 0 <= cell["aurc"]["mean"] <= 1
    assert 0 <= cell["aurc_softmax"]["mean"] <= 1
    assert len(cell["risk"]) == len(selective.COVERAGES)
    np.testing.assert_allclose(
        cell["risk"][0], 1 - acc[(0.3, 1)][name]["mean"], atol=1e-5)
  report = (tmp_path / "report.md").read_text()
  assert "Selective classification" in report and "abstain output" in report
