"""ScoreContext: a data-dependent scorer sees the loss and the batches.

A SNIP-style scorer (|g * w|, Lee et al. 2019, Eq. 6 without the
normalization) written against the interface, on a linear least-squares
model whose gradient has a closed form: the mask ``pruning.prune`` returns
keeps exactly the weights NumPy ranks highest."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket import pruning
from jaxticket.core import masks
from jaxticket.core.summary import SchemaError
from jaxticket.experiments.summaries import ImpSummary
from jaxticket.pruning import scorers


def snip_like(ctx: scorers.ScoreContext):
  loss = lambda p: sum(ctx.loss_fn(p, b) for b in ctx.batches)
  grads = jax.grad(loss)(ctx.params)
  return masks.map_prunable(lambda m, g, w: jnp.abs(g * w), ctx.mask, grads,
                            ctx.params)


def test_data_dependent_scorer_gets_loss_and_batches(monkeypatch):
  monkeypatch.setitem(scorers.SCORERS, "snip_like", snip_like)
  rng = np.random.default_rng(0)
  w = rng.normal(size=(6, 3)).astype(np.float32)
  batches = [(rng.normal(size=(16, 6)).astype(np.float32),
              rng.normal(size=(16, 3)).astype(np.float32)) for _ in range(2)]
  params = {"head": {"kernel": jnp.asarray(w), "bias": jnp.zeros(3)}}
  loss_fn = lambda p, b: 0.5 * jnp.mean(jnp.sum(
      (b[0] @ p["head"]["kernel"] + p["head"]["bias"] - b[1]) ** 2, -1))
  mask = masks.ones(params)
  new = pruning.prune(params, mask, 0.5, scorer="snip_like",
                      loss_fn=loss_fn, batches=batches)
  grad = sum(x.T @ (x @ w - y) / len(x) for x, y in batches)
  score = np.abs(grad * w).ravel()
  keep = np.zeros(score.size, bool)
  keep[np.argsort(score)[score.size // 2:]] = True
  np.testing.assert_array_equal(np.asarray(new["head"]["kernel"]).ravel(),
                                keep)
  assert new["head"]["bias"] is None


def test_summary_schema_round_trip_and_newer_versions_refused():
  s = ImpSummary(levels=[{"level": 0}], seeds=[0, 1], rewind="init",
                 rewind_step=0, schedule="iterative", strategy="global",
                 model="lenet_300_100", dataset="mnist1d", wall_time_s=1.0)
  obj = s.to_json()
  assert obj["schema"] == "imp" and obj["schema_version"] == ImpSummary.VERSION
  assert "auto_rewind" not in obj  # optional and unset
  back = ImpSummary.from_json({**obj, "command": "imp", "unknown": 1})
  assert back == s and back["seeds"] == [0, 1] and back.get("nope", 3) == 3
  try:
    ImpSummary.from_json({**obj, "schema_version": ImpSummary.VERSION + 1})
  except SchemaError as e:
    assert "upgrade jaxticket" in str(e)
  else:
    raise AssertionError("a newer schema version must be refused")
  try:
    ImpSummary.from_json({"schema": "imp", "levels": []})
  except SchemaError as e:
    assert "lacks" in str(e)
  else:
    raise AssertionError("missing fields must be refused")
