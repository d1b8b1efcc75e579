"""jaxticket continual: metrics against a hand-computed matrix, the gates'
forward against NumPy, the annealing schedule, the zero-forgetting
promise (bit-identical protected weights), fine-tuning forgets, one-line
config errors, and the run-directory contract on :tiny."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config as config_lib
from jaxticket.core.checks import ConfigError
from jaxticket.experiments import common
from jaxticket.experiments.continual import continual, metrics
from jaxticket.models import gated_mlp

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs",
                      "continual_mnist1d.py")


def tiny(**over):
  cfg = config_lib.load(CONFIG + ":tiny")
  for k, v in over.items():
    section, key = k.split("__")
    cfg[section][key] = v
  return cfg


def test_metrics_against_hand_computed_matrix():
  a = np.array([[0.9, 0.1, 0.2], [0.7, 0.8, 0.3], [0.6, 0.75, 0.85]])
  b = np.array([0.1, 0.1, 0.1])
  assert metrics.average_accuracy(a) == pytest.approx((0.6 + 0.75 + 0.85) / 3)
  assert metrics.bwt(a) == pytest.approx(((0.6 - 0.9) + (0.75 - 0.8)) / 2)
  assert metrics.fwt(a, b) == pytest.approx(((0.1 - 0.1) + (0.3 - 0.1)) / 2)
  # leading (replica) axes are kept
  both = metrics.bwt(np.stack([a, np.eye(3)]))
  np.testing.assert_allclose(both, [-0.175, -1.0])


def test_slope_follows_hat_schedule():
  smax, spe = 400.0, 10
  s = np.asarray(gated_mlp.slope(jnp.arange(25), spe, smax))
  assert s[0] == pytest.approx(1 / smax)
  assert s[spe - 1] == pytest.approx(smax)
  assert s[spe] == pytest.approx(1 / smax)  # restarts every epoch
  np.testing.assert_allclose(
      s[:spe], 1 / smax + (smax - 1 / smax) * np.arange(spe) / (spe - 1),
      rtol=1e-6)
  assert np.all(np.diff(s[:spe]) > 0)


def _reference(params, x, t, s=None):
  """NumPy forward of a gated GatedMLP: gates sigmoid(s e) or [e > 0]."""
  h = x.reshape(len(x), -1)
  for l in range(2):
    p = params[f"Layer_{l}"]
    h = np.maximum(h @ np.asarray(p["kernel"]) + np.asarray(p["bias"]), 0)
    e = np.asarray(params[f"gate_{l}"])[t]
    h = h * ((e > 0).astype(np.float32) if s is None else
             1 / (1 + np.exp(-s * e)))
  out = h @ np.asarray(params["head"]["kernel"]) + np.asarray(
      params["head"]["bias"])
  return out[:, t * 4:(t + 1) * 4]


def test_gates_hard_at_test_and_sigmoid_in_training():
  model = gated_mlp.GatedMLP(widths=(8, 6), tasks=3, classes=4,
                             steps_per_epoch=5, smax=50.0)
  x = jax.random.normal(jax.random.key(0), (7, 5, 1))
  params = model.init(jax.random.key(1), x)["params"]
  params = {**params, "task": jnp.float32(2)}
  out = model.apply({"params": params}, x, train=False)
  np.testing.assert_allclose(out, _reference(params, np.asarray(x), 2),
                             rtol=1e-5, atol=1e-5)
  step = jnp.int32(7)  # batch 2 of its epoch
  s = float(gated_mlp.slope(step, 5, 50.0))
  out = model.apply({"params": params}, x, train=True, step=step)
  np.testing.assert_allclose(out, _reference(params, np.asarray(x), 2, s),
                             rtol=1e-5, atol=1e-5)
  gates = gated_mlp.task_gates(params, "gated", 2, 2)
  assert all(set(np.unique(np.asarray(g))) <= {0.0, 1.0} for g in gates)


def test_penalty_column_is_hat_regularizer():
  model = gated_mlp.GatedMLP(widths=(8, 6), tasks=2, classes=4,
                             steps_per_epoch=5, smax=50.0, penalty=True)
  x = jax.random.normal(jax.random.key(0), (3, 5, 1))
  params = model.init(jax.random.key(1), x)["params"]
  used = [np.r_[np.ones(3), np.zeros(5)], np.r_[np.zeros(4), np.ones(2)]]
  params = {**params, "task": jnp.float32(1), "used_0": jnp.asarray(
      used[0], jnp.float32), "used_1": jnp.asarray(used[1], jnp.float32)}
  step = jnp.int32(3)
  s = float(gated_mlp.slope(step, 5, 50.0))
  out = model.apply({"params": params}, x, train=True, step=step)
  a = [1 / (1 + np.exp(-s * np.asarray(params[f"gate_{l}"])[1]))
       for l in range(2)]
  want = sum((a[l] * (1 - used[l])).sum() for l in range(2)) / sum(
      (1 - u).sum() for u in used)
  assert out.shape == (3, 5)
  np.testing.assert_allclose(out[:, -1], want, rtol=1e-5)
  task = continual.tasks_lib.Penalized(continual.tasks_lib.Classification(),
                                       0.5)
  y = jnp.array([0, 1, 2])
  losses, acc = task.per_example(out, y)
  base, base_acc = continual.tasks_lib.Classification().per_example(
      out[:, :-1], y)
  np.testing.assert_allclose(losses, base + 0.5 * want, rtol=1e-5)
  np.testing.assert_array_equal(acc, base_acc)


@pytest.fixture(scope="module")
def sequence():
  cfg = tiny()
  continual.validate(cfg)
  return cfg, continual.build_tasks(cfg, common.load_data(cfg))


@pytest.mark.parametrize("method", ["gated", "fixed"])
def test_weights_earlier_tasks_use_are_bit_identical(sequence, method):
  cfg, tasks = sequence
  cfg = tiny(continual__lamb=0.1)  # a light penalty: some units stay on
  res = continual.train_method(cfg, method, tasks, [0, 1], keep_params=True)
  snaps = res["params"]
  layers = len(cfg.continual.widths)
  changed = reused = 0
  for i in range(len(tasks) - 1):
    protect = jax.vmap(lambda p: gated_mlp.protected_weights(p, layers))(
        snaps[i])
    for later in snaps[i + 1:]:
      for l in range(layers):
        for leaf in ("kernel", "bias"):
          m = np.asarray(protect[f"Layer_{l}"][leaf])
          old = np.asarray(snaps[i][f"Layer_{l}"][leaf])
          new = np.asarray(later[f"Layer_{l}"][leaf])
          assert m.any()
          np.testing.assert_array_equal(new[m], old[m])  # bit for bit
          changed += int((new[~m] != old[~m]).sum())
        if l > 0:  # new units read used units' outputs: those weights train
          used_in = np.asarray(snaps[i][f"used_{l - 1}"]) > 0
          used_out = np.asarray(snaps[i][f"used_{l}"]) > 0
          reuse = used_in[:, :, None] & ~used_out[:, None, :]
          kern = f"Layer_{l}"
          reused += int((np.asarray(later[kern]["kernel"])[reuse] !=
                         np.asarray(snaps[i][kern]["kernel"])[reuse]).sum())
      for t in range(i + 1):  # earlier tasks' gates / heads unchanged
        if method == "gated":
          np.testing.assert_array_equal(later["gate_0"][:, t],
                                        snaps[i]["gate_0"][:, t])
  assert changed > 0 and reused > 0  # later tasks trained the free weights
  a = res["test"]  # [R, T, T]: zero forgetting, exactly
  for j in range(len(tasks)):
    for i in range(j + 1, len(tasks)):
      np.testing.assert_array_equal(a[:, i, j], a[:, j, j])
  assert res["traces"]["run"] == 1  # one program for every stage


def test_a_replica_of_the_vmapped_program_equals_its_own_run(sequence):
  cfg, tasks = sequence
  both = continual.train_method(cfg, "gated", tasks, [3, 4])
  alone = continual.train_method(cfg, "gated", tasks, [4])
  np.testing.assert_allclose(both["test"][1], alone["test"][0], atol=0.02)
  np.testing.assert_array_equal(both["units"][1], alone["units"][0])


def test_use_data_refuses_other_shapes(sequence):
  cfg, tasks = sequence
  prog = continual.make_program(cfg, "finetune", tasks[0])
  from jaxticket.core import loop as loop_lib
  trainer = loop_lib.Trainer(prog, tasks[0], shard=False)
  trainer.use_data(tasks[1])  # same shapes: fine
  assert trainer.data is tasks[1]
  import dataclasses
  short = dataclasses.replace(tasks[1], train_x=tasks[1].train_x[:10],
                              train_y=tasks[1].train_y[:10])
  with pytest.raises(ValueError, match="use_data"):
    trainer.use_data(short)


def test_finetuning_forgets(sequence):
  cfg = tiny(train__steps=300, train__eval_every=300, continual__tasks=2,
             continual__widths=(32, 32))
  tasks = continual.build_tasks(cfg, common.load_data(cfg))
  res = continual.train_method(cfg, "finetune", tasks, [0, 1])
  b = metrics.bwt(res["test"])
  assert np.all(b < -0.02), b
  assert np.all(res["test"][:, 0, 0] > 0.3)  # it had learned task 0


@pytest.mark.parametrize("key,value,words", [
    ("continual.sequence", "rotation", "continual.sequence"),
    ("continual.replay_tau", 0.0, "continual.replay_tau"),
    ("continual.replay_units", "first", "continual.replay_units"),
    ("continual.replay_clip", -1.0, "continual.replay_clip"),
    ("continual.methods", ("gated", "hat"), "continual.methods"),
    ("continual.tasks", 1, "continual.tasks"),
    ("train.weight_decay", 5e-4, "train.weight_decay"),
])
def test_bad_config_is_one_line(key, value, words):
  cfg = tiny()
  section, k = key.split(".")
  cfg[section][k] = value
  with pytest.raises(ConfigError) as e:
    continual.validate(cfg)
  assert words in str(e.value) and "\n" not in str(e.value)


def test_split_with_too_many_tasks_is_one_line():
  cfg = tiny(continual__sequence="split", continual__tasks=6)
  with pytest.raises(ConfigError, match="continual.tasks=6"):
    continual.build_tasks(cfg, common.load_data(cfg))


def test_split_tasks_renumber_disjoint_classes():
  cfg = tiny(continual__sequence="split", continual__tasks=5)
  data = common.load_data(cfg)
  tasks = continual.build_tasks(cfg, data)
  assert [d.num_classes for d in tasks] == [2] * 5
  assert len({d.train_x.shape for d in tasks}) == 1  # one program
  for t, d in enumerate(tasks):
    assert set(np.unique(d.train_y)) == {0, 1}
    # the inputs are the data's examples of classes 2t, 2t+1
    want = data.train_x[np.isin(data.train_y, [2 * t, 2 * t + 1])]
    np.testing.assert_array_equal(d.train_x, want[:len(d.train_x)])


@pytest.mark.slow
def test_end_to_end_tiny_writes_the_contract(tmp_path):
  cfg = tiny()
  summary = continual.run(cfg, str(tmp_path), progress=False)
  for f in ("config.json", "metrics.jsonl", "summary.json", "report.md",
            "accuracy_matrix.png"):
    assert os.path.exists(tmp_path / f), f
  obj = json.load(open(tmp_path / "summary.json"))
  assert obj["schema"] == "continual"
  rows = {r["method"]: r for r in summary.rows}
  assert set(rows) == {"gated", "dsn", "fixed", "finetune", "separate",
                       "separate_imp"}
  assert rows["gated"]["bwt"]["mean"] == 0.0  # zero forgetting
  assert len(rows["dsn"]["replay"]) == 3  # (1, 0), (2, 0), (2, 1)
  report_md = open(tmp_path / "report.md").read()
  assert "Data-free replay" in report_md and "kept (active seeds)" in (
      report_md) and "val acc before -> after" in report_md
  a = np.asarray(rows["finetune"]["accuracy_matrix_per_seed"])
  np.testing.assert_allclose(rows["finetune"]["bwt"]["per_seed"],
                             metrics.bwt(a))
  # the random masks have the gated method's unit counts
  np.testing.assert_allclose(
      np.rint(np.asarray(rows["fixed"]["unit_fraction"]) * 16),
      np.rint(np.asarray(rows["gated"]["unit_fraction"]) * 16).clip(1))
  again = continual.run(cfg, str(tmp_path), progress=False)  # finished
  assert again.rows == summary.rows
  # killed after two methods: the rerun redoes only the rest, metrics once
  rows_before = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  os.remove(tmp_path / "summary.json")
  for m in ("fixed", "separate"):
    os.remove(tmp_path / "stages" / f"{m}.json")
  with open(tmp_path / "metrics.jsonl", "a") as f:  # a torn partial row
    f.write(json.dumps({"method": "separate", "step": 1}) + "\n{\"meth")
  resumed = continual.run(cfg, str(tmp_path), progress=False)
  rows_after = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  key = lambda r: (r["method"], r["stage"], r["seed"], r["step"])
  assert sorted(map(key, rows_after)) == sorted(map(key, rows_before))
  by = {r["method"]: r for r in resumed.rows}
  assert by["gated"] == rows["gated"] and by["finetune"] == rows["finetune"]
  np.testing.assert_allclose(by["fixed"]["accuracy_matrix"],
                             rows["fixed"]["accuracy_matrix"])


@pytest.mark.parametrize("override,needle", [
    ("--config.continual.sequence=rotation", "continual.sequence"),
    ("--config.train.weight_decay=0.001", "train.weight_decay"),
])
def test_cli_bad_config_is_one_line(tmp_path, capsys, override, needle):
  from jaxticket import cli
  try:
    code = cli.main(["continual", "--config", CONFIG + ":tiny", "--workdir",
                     str(tmp_path / "w"), override])
  except SystemExit as e:
    code = e.code
  err = capsys.readouterr().err
  assert code == 2 and needle in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "w").exists()


def test_help_names_continual(capsys):
  from jaxticket import cli
  with pytest.raises(SystemExit):
    cli.main(["continual", "--help"])
  out = capsys.readouterr().out
  assert "continual.sequence" in out and "HAT" in out


def test_separate_nets_keep_their_diagonal(sequence):
  cfg, tasks = sequence
  res = continual.train_method(cfg, "separate", tasks, [0])
  a = res["test"][0]
  for i in range(len(tasks)):
    for j in range(i + 1):
      assert a[i, j] == a[j, j]  # net j answers task j
  assert metrics.bwt(a) == 0.0
  # each net trained only its task: on its own task better than untrained
  assert np.all(np.diagonal(a) > res["init"][0])
  assert res["traces"]["run"] == 1


# --------------------------------------------------------------------------
# DSN's data-free replay (experiments/continual/replay.py) and sequences.

from jaxticket.experiments.continual import replay as replay_lib  # noqa: E402


def _net(widths=(16, 16), tasks=3, classes=10, seed=0):
  m = gated_mlp.GatedMLP(widths=widths, tasks=tasks, classes=classes)
  p = m.init(jax.random.key(seed), jnp.zeros((1, 40, 1)))["params"]
  return m, p, (lambda q, x: m.apply({"params": q}, x))


@pytest.mark.slow
def test_dirichlet_labels_follow_nayak_concentrations():
  sim = jnp.array([[1.0, 0.5, -1.0], [0.5, 1.0, 0.0], [-1.0, 0.0, 1.0]])
  conc = np.asarray(replay_lib.concentrations(sim, 2.0))
  want = (np.asarray(sim) - np.asarray(sim).min(1, keepdims=True))
  want = 2.0 * want / np.ptp(np.asarray(sim), 1, keepdims=True)
  np.testing.assert_allclose(conc, np.maximum(want, 1e-3), rtol=1e-6)
  y = np.asarray(replay_lib.soft_labels(jax.random.key(0), sim, 3000, 2.0))
  np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-5)
  # a Dirichlet's mean is alpha / sum(alpha): class c's labels average it
  for c in range(3):
    np.testing.assert_allclose(y[c::3].mean(0), conc[c] / conc[c].sum(),
                               atol=0.03)
  # similarity: cosine of the head columns, unit diagonal, symmetric
  _, p, _ = _net()
  s = np.asarray(replay_lib.class_similarity(p["head"]["kernel"],
                                             jnp.int32(1), 10))
  w = np.asarray(p["head"]["kernel"])[:, 10:20]
  w = w / np.linalg.norm(w, axis=0)
  np.testing.assert_allclose(s, w.T @ w, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_impressions_approach_their_dirichlet_targets():
  _, p, apply = _net()
  k = jnp.int32(1)
  p = {**p, "task": jnp.asarray(1.0)}
  imp = jax.jit(lambda p: replay_lib.synthesize(
      apply, p, jax.random.key(1), k, 10, (40, 1), 64, 300, 0.05, 20.0,
      1.0))(p)
  l = np.asarray(imp.losses)
  assert l[-1] < 0.9 * l[0], (l[0], l[-1])  # a 16-unit net: a floor
  assert np.mean(np.diff(l) <= 1e-6) > 0.95  # Adam walks it down
  # the loss is the KL it claims: recompute at the final inputs (NumPy)
  logits = np.asarray(apply(p, imp.x), np.float64) / 20.0
  logq = logits - logits.max(1, keepdims=True)
  logq -= np.log(np.exp(logq).sum(1, keepdims=True))
  y = np.asarray(imp.y, np.float64)
  kl = np.mean(np.sum(y * (np.log(np.maximum(y, 1e-12)) - logq), 1))
  assert kl < l[0] and kl == pytest.approx(
      float(replay_lib.kl_to(imp.y, apply(p, imp.x), 20.0)), rel=1e-4)
  # the impressions' outputs rank their soft label's top class first
  # more often than chance (1/10)
  top = np.argmax(logits, 1) == np.argmax(y, 1)
  assert top.mean() > 0.25, top.mean()


def _tiny_gated_apply():
  """The :tiny gated MLP's test-time and training-time forwards."""
  m = gated_mlp.GatedMLP(widths=(16, 16), tasks=3, classes=10)
  mt = gated_mlp.GatedMLP(widths=(16, 16), tasks=3, classes=10,
                          steps_per_epoch=2)
  apply = lambda q, x: m.apply({"params": q}, x)
  apply_train = lambda q, x: mt.apply({"params": q}, x, train=True,
                                      step=jnp.int32(1))
  return apply, apply_train


def _replay_setup(sequence):
  cfg, tasks = sequence
  cfg = tiny(continual__lamb=0.1)
  res = continual.train_method(cfg, "gated", tasks, [0], keep_params=True)
  p = loop_lib_index(res["params"][-1])  # after the last task, absorbed
  apply, apply_train = _tiny_gated_apply()
  return tasks, p, apply, apply_train


def _run_replay(tasks, p, apply, apply_train, k, active, seed=2):
  d = tasks[k]
  val = (jnp.asarray(d.normalize(d.val_x)), jnp.asarray(d.val_y),
         jnp.ones(len(d.val_y)))
  before = {**p, "task": jnp.asarray(float(k))}
  out = jax.jit(lambda q: replay_lib.replay_task(
      apply, apply_train, q, jax.random.key(seed), jnp.int32(k),
      jnp.asarray(active), val, 10, (40, 1), 2, 64, 30, 0.05, 20.0, 1.0,
      40, 0.05))(before)
  return before, out, val


def test_task_similarity_is_mask_cosine_against_numpy():
  _, p, _ = _net()
  g = [np.asarray(p[f"gate_{l}"]) > 0 for l in range(2)]
  for i in range(3):
    want = np.mean([[(gl[t] & gl[i]).sum() / max(
        np.sqrt(gl[t].sum() * gl[i].sum()), 1e-8) for t in range(3)]
        for gl in g], 0)
    np.testing.assert_allclose(
        np.asarray(replay_lib.task_similarity(p, jnp.int32(i), 2)), want,
        rtol=1e-5)
  np.testing.assert_allclose(
      np.asarray(replay_lib.task_similarity(p, jnp.int32(1), 2))[1], 1.0,
      rtol=1e-6)


@pytest.mark.slow
def test_replay_changes_only_task_k_new_units_and_head_block(sequence):
  tasks, p, apply, apply_train = _replay_setup(sequence)
  k, classes, layers = 0, 10, 2
  before, out, val = _run_replay(tasks, p, apply, apply_train, k, True)
  after = out.params
  allowed = replay_lib.trainable(before, jnp.int32(k), layers, classes)
  # the trainable set is the code's (1 - old_mask[k]) * mask_pre, per layer
  for l in range(layers):
    used = np.asarray(before[f"used_{l}"]) > 0
    mine = np.asarray(before[f"gate_{l}"])[k] > 0
    want = np.zeros_like(np.asarray(before[f"gate_{l}"]), bool)
    want[k] = used & ~mine
    np.testing.assert_array_equal(np.asarray(allowed[f"gate_{l}"]), want)
  assert any(np.asarray(allowed[f"gate_{l}"]).any() for l in range(layers))
  flat_b = dict(jax.tree_util.tree_flatten_with_path(before)[0])
  flat_a = dict(jax.tree_util.tree_flatten_with_path(after)[0])
  flat_m = dict(jax.tree_util.tree_flatten_with_path(allowed)[0])
  moved = False
  for path, old in flat_b.items():
    old, new = np.asarray(old), np.asarray(flat_a[path])
    m = np.asarray(flat_m[path])
    np.testing.assert_array_equal(new[~m], old[~m])  # bit for bit
    moved |= not np.array_equal(new, old)
  assert np.asarray(out.replay_losses)[-5:].mean() < np.asarray(
      out.replay_losses)[:5].mean()  # SGD fits the pre-replay logits
  acc = lambda q: np.mean(np.argmax(np.asarray(apply(q, val[0])), -1) ==
                          np.asarray(val[1]))
  np.testing.assert_allclose(float(out.val_before), acc(before), rtol=1e-6)
  if bool(out.accepted):  # kept only if task k's validation accuracy rose
    assert acc(after) > acc(before) and moved
  else:  # stepped back: nothing at all changed
    assert not moved
  # inactive (an earlier, more similar task was rejected): no change
  _, off, _ = _run_replay(tasks, p, apply, apply_train, k, False)
  assert not bool(off.accepted)
  for a, b in zip(jax.tree.leaves(off.params), jax.tree.leaves(before)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # every other task computes exactly what it did
  x = jnp.asarray(tasks[1].normalize(tasks[1].test_x[:64]))
  for j in range(1, len(tasks)):
    pj = lambda q: {**q, "task": jnp.asarray(float(j))}
    np.testing.assert_array_equal(np.asarray(apply(pj(after), x)),
                                  np.asarray(apply(pj(before), x)))


def loop_lib_index(stacked):
  return jax.tree.map(lambda x: jnp.asarray(x[0]), stacked)


@pytest.mark.slow
def test_dsn_method_runs_replay_and_keeps_one_program(sequence):
  cfg, tasks = sequence
  cfg = tiny(continual__replay_buffer=16, continual__replay_synth_steps=10,
             continual__replay_steps=10)
  res = continual.train_method(cfg, "dsn", tasks, [0, 1])
  assert res["traces"]["run"] == 1
  # one replay call per (stage i >= 1, similarity rank < i)
  log = res["replay"]
  assert [(r["stage"], r["rank"]) for r in log] == [(1, 0), (2, 0), (2, 1)]
  for stage in (1, 2):
    rows = [r for r in log if r["stage"] == stage]
    for s in range(2):  # per seed: every earlier task once, by similarity
      assert sorted(r["task"][s] for r in rows) == list(range(stage))
      sims = [r["similarity"][s] for r in rows]
      assert sims == sorted(sims, reverse=True)
      alive = True  # the first rejection stops the rest (the code's break)
      for r in rows:
        assert r["active"][s] == alive
        assert not r["accepted"][s] or r["val_after"][s] > r["val_before"][s]
        alive = alive and r["accepted"][s]
  a = res["test"]
  # replay touches only earlier tasks: the diagonal equals gated's
  gated = continual.train_method(cfg, "gated", tasks, [0, 1])
  np.testing.assert_array_equal(np.diagonal(a, axis1=1, axis2=2),
                                np.diagonal(gated["test"], axis1=1,
                                            axis2=2))


def _fake(n=12, d=40, classes=10):
  import dataclasses
  data = common.load_data(tiny())
  pos = np.broadcast_to(np.arange(d, dtype=np.float32)[None, :, None],
                        (n, d, 1)).copy()
  y = (np.arange(n) % classes).astype(data.train_y.dtype)
  return dataclasses.replace(data, train_x=pos, val_x=pos.copy(),
                             test_x=pos.copy(), train_y=y, val_y=y, test_y=y)


def test_rotated_sequence_is_a_cyclic_shift_per_task():
  cfg = tiny(continual__sequence="rotated", continual__tasks=4)
  data = _fake()
  tasks = continual.build_tasks(cfg, data)
  assert len(tasks) == 4
  for t, d in enumerate(tasks):
    assert d.train_x.shape == data.train_x.shape
    np.testing.assert_array_equal(d.train_y, data.train_y)
    shift = continual.rotation_shift(t, 4, 40)
    assert shift == t * 10
    np.testing.assert_array_equal(d.train_x[0, :, 0],
                                  (np.arange(40) - shift) % 40)
    np.testing.assert_array_equal(d.test_x, np.roll(data.test_x, shift, 1))


def test_permuted_sequence_is_a_bijection_per_task():
  cfg = tiny(continual__sequence="permuted", continual__tasks=3)
  data = _fake()
  tasks = continual.build_tasks(cfg, data)
  np.testing.assert_array_equal(tasks[0].train_x, data.train_x)
  perms = []
  for d in tasks:
    perm = d.train_x[0, :, 0].astype(int)
    assert sorted(perm) == list(range(40))  # a bijection of positions
    np.testing.assert_array_equal(d.test_x[:, :, 0],
                                  data.test_x[:, perm, 0])
    np.testing.assert_array_equal(d.train_y, data.train_y)
    perms.append(tuple(perm))
  assert len(set(perms)) == 3


@pytest.mark.slow
def test_separate_imp_tickets_have_the_imp_density(sequence):
  cfg, tasks = sequence
  cfg = tiny(continual__imp_levels=2, continual__imp_fraction=0.5)
  res = continual.train_method(cfg, "separate_imp", tasks, [0],
                               keep_params=True)
  assert res["traces"]["run"] == 1
  for i, snap in enumerate(res["params"]):  # net i after its task
    for leaf in ("Layer_0", "Layer_1", "head"):
      k = np.asarray(snap[leaf]["kernel"])[0]
      # layer-wise magnitude IMP: exactly 25% kept per kernel (rounding)
      assert abs((k != 0).mean() - 0.25) < 0.02, (i, leaf, (k != 0).mean())
  a = res["test"][0]
  for i in range(len(tasks)):  # net j answers task j: no forgetting
    np.testing.assert_array_equal(a[i, : i + 1], np.diagonal(a)[: i + 1])


def _diverging_replay(clip):
  """A random net whose every unit some task uses (so task 1's new units
  are where its gates are <= 0), replayed at lr 1e3: plain SGD on the
  logit MSE overflows, as lr 0.05 did on split Fashion-MNIST."""
  _, p, _ = _net()
  p = {**p, "task": jnp.asarray(1.0),
       **{f"used_{l}": jnp.ones_like(p[f"used_{l}"]) for l in range(2)}}
  apply, apply_train = _tiny_gated_apply()
  x = jax.random.normal(jax.random.key(3), (32, 40, 1))
  val = (x, jnp.arange(32) % 10, jnp.ones(32))
  out = jax.jit(lambda q: replay_lib.replay_task(
      apply, apply_train, q, jax.random.key(2), jnp.int32(1),
      jnp.asarray(True), val, 10, (40, 1), 2, 32, 5, 0.05, 20.0, 1.0, 40,
      1e3, clip=clip))(p)
  return p, out


@pytest.mark.slow
def test_non_finite_replay_is_rejected_and_flagged_diverged():
  p, out = _diverging_replay(None)  # no clip (the reference code)
  assert not np.all(np.isfinite(np.asarray(out.replay_losses)))
  assert bool(out.diverged) and not bool(out.accepted)
  for a, b in zip(jax.tree.leaves(out.params), jax.tree.leaves(p)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # the global-norm clip (the default) keeps the same replay finite
  _, clipped = _diverging_replay(1.0)
  assert np.all(np.isfinite(np.asarray(clipped.replay_losses)))
  assert not bool(clipped.diverged)
  assert np.all(np.isfinite(np.asarray(clipped.val_after)))


def test_replay_table_says_diverged_never_nan():
  from jaxticket.experiments.continual import report
  row = {"replay": [{
      "stage": 3, "rank": 0, "task": [1, 1], "similarity": [0.5, 0.5],
      "active": [True, True], "synth_kl_first": [0.7, 0.7],
      "synth_kl_last": [0.02, 0.04], "distill_first": [0.57, 0.66],
      "distill_last": [0.026, None], "diverged": [False, True],
      "val_before": [0.98, 0.98], "val_after": [0.91, 0.51],
      "accepted": [False, False]}]}
  t = report.replay_table(row)
  assert "nan" not in t.lower()
  assert "0.5700 -> 0.0260 (diverged in 1/2)" in t  # finite seeds' means
