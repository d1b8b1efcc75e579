"""The masked-LM task (issue 17): masking rates, loss on selected positions
only, and masking inside the compiled training scan."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxticket import tasks
from jaxticket.core import task as task_lib
from jaxticket.tasks.mlm import IGNORE, SPECIAL, MaskedLM

V = 260


def test_masking_rates_over_a_large_sample():
  task = tasks.get("mlm", vocab_size=V)
  key = jax.random.key(0)
  tokens = jax.random.randint(key, (512, 256), 4, V)
  tokens = tokens.at[:, 0].set(1).at[:, -32:].set(0)  # [CLS], padding
  out, labels = jax.jit(task.prepare)(jax.random.key(1), tokens, None)
  out, labels, tokens = map(np.asarray, (out, labels, tokens))
  ordinary = tokens >= 4
  selected = labels >= 0
  assert not selected[~ordinary].any()  # never [CLS] or padding
  assert (labels[~ordinary] == SPECIAL).all()
  assert (labels[ordinary & ~selected] == IGNORE).all()
  assert (out[~ordinary] == tokens[~ordinary]).all()
  n = ordinary.sum()  # 512 * 223 = 114176 tokens
  rate = selected.sum() / n
  assert abs(rate - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n)
  np.testing.assert_array_equal(labels[selected], tokens[selected])
  k = selected.sum()
  masked = (out[selected] == 3).sum() / k
  changed = ((out[selected] != 3) & (out[selected] != tokens[selected])).sum()
  kept = (out[selected] == tokens[selected]).sum() / k
  tol = lambda p: 4 * np.sqrt(p * (1 - p) / k)
  assert abs(masked - 0.8) < tol(0.8)
  # A random replacement equal to the original (1/256) counts as kept.
  random_rate = changed / k
  assert abs(random_rate - 0.1 * 255 / 256) < tol(0.1)
  assert abs(kept - (0.1 + 0.1 / 256)) < tol(0.1)
  assert (out[selected & (out != 3)] >= 4).all()  # random tokens ordinary
  assert (out[~selected] == tokens[~selected]).all()


def test_loss_is_cross_entropy_on_selected_tokens_only():
  task = MaskedLM(vocab_size=7, num_special=4)
  logits = jax.random.normal(jax.random.key(0), (3, 5, 7))
  labels = jnp.array([[SPECIAL, 5, IGNORE, IGNORE, 6],
                      [SPECIAL, IGNORE, IGNORE, IGNORE, SPECIAL],
                      [4, IGNORE, IGNORE, IGNORE, SPECIAL]])
  losses, scores = task.per_example(logits, labels)
  lp = np.asarray(jax.nn.log_softmax(logits))
  picks = [(0, 1, 5), (0, 4, 6), (2, 0, 4)]
  want = -np.mean([lp[b, t, c] for b, t, c in picks])
  np.testing.assert_allclose(float(losses.mean()), want, rtol=1e-6)
  acc = np.mean([np.argmax(lp[b, t]) == c for b, t, c in picks])
  np.testing.assert_allclose(float(scores.mean()), acc, rtol=1e-6)
  assert float(losses[1]) == 0.0
  # A padded row (all special, as evaluation pads its last batch) counts
  # for nothing: the sum over the 3 real rows / 3 is still the token mean.
  padded = jnp.concatenate([labels, jnp.full((2, 5), SPECIAL)])
  more = jnp.concatenate([logits, jnp.zeros((2, 5, 7))])
  l2, s2 = task.per_example(more, padded)
  np.testing.assert_allclose(float(l2.sum()) / 3, want, rtol=1e-6)
  np.testing.assert_allclose(float(s2.sum()) / 3, acc, rtol=1e-6)
  assert float(l2[3:].sum()) == 0.0


def test_prepare_hook_is_identity_for_other_tasks():
  x, y = jnp.ones((2, 3)), jnp.zeros(2)
  got = task_lib.prepare(tasks.get("classification"), jax.random.key(0), x, y)
  assert got[0] is x and got[1] is y


def _mlm_trainer():
  from jaxticket import models
  from jaxticket.core import loop as loop_lib
  from jaxticket.core import optim
  from jaxticket.core import step as step_lib
  from jaxticket.data.text_datasets import TextDataset
  from jaxticket.models import transformer
  rng = np.random.default_rng(0)
  tok = lambda n: np.concatenate([np.ones((n, 1), np.int32), rng.integers(
      4, 40, (n, 15), dtype=np.int32)], 1)
  data = TextDataset("toy", tok(64), np.zeros(64, np.int32), tok(8),
                     np.zeros(8, np.int32), tok(8), np.zeros(8, np.int32),
                     num_classes=V, vocab_size=V, tokenizer="bytes",
                     task="mlm")
  model = models.build("transformer", V, 0.25, 1, vocab_size=V, heads=2,
                       max_len=16, output="mlm")
  recipe = optim.Recipe(steps=8, batch_size=8, optimizer="adam")
  prog = step_lib.Program(model, tasks.get("mlm", vocab_size=V), recipe,
                          data.normalize, prunable=transformer.PRUNABLE)
  return loop_lib, optim, loop_lib.Trainer(prog, data, eval_batch_size=8,
                                           shard=False)


@pytest.mark.slow
def test_mlm_trains_in_one_compiled_scan_and_replicas_match_separate_runs():
  loop_lib, optim, tr = _mlm_trainer()
  state = tr.init(loop_lib.replica_keys([0, 1]))
  hp = optim.stack_hparams([1e-3] * 2, [0.0] * 2)
  state, losses = tr.run(state, hp, 4)
  state, more = tr.run(state, hp, 4)
  assert tr.traces["run"] == 1 and np.isfinite(np.asarray(more)).all()
  ev1, ev2 = tr.evaluate(state), tr.evaluate(state)  # fixed evaluation key
  np.testing.assert_array_equal(np.asarray(ev1.val_loss),
                                np.asarray(ev2.val_loss))
  assert tr.traces["evaluate"] == 1
  # Masks come from each replica's own key and step: replica 1 alone, in a
  # one-replica program, trains the same (vmapped == sequential).
  _, _, solo = _mlm_trainer()
  s1 = solo.init(loop_lib.replica_keys([1]))
  h1 = optim.stack_hparams([1e-3], [0.0])
  s1, l1 = solo.run(s1, h1, 4)
  np.testing.assert_allclose(np.asarray(l1)[0], np.asarray(losses)[1],
                             rtol=2e-4, atol=1e-5)
  # Different steps draw different masks: the two seeds' first losses differ
  # and a replica's losses are not constant.
  assert len(set(np.round(np.asarray(losses)[0], 5))) > 1
