"""Strong tickets: the subset-sum construction against brute force and its
error falling with over-parameterization; the structured construction
keeping whole units; the shape-only density of a unit mask against the
real masks; ``jaxticket strong`` end to end (run directory, resume,
refusal of another config) and its bad input."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import cli, config, models
from jaxticket.core.checks import ConfigError
from jaxticket.experiments.strong import settings, strong
from jaxticket.models import supermask as sm
from jaxticket.subnetworks import subset_sum as ss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "strong_mnist1d.py") + ":tiny"


def test_scalar_subset_sum_is_exact_against_brute_force():
  rng = np.random.default_rng(0)
  for m in (1, 2, 5, 9):
    values = rng.uniform(-1, 1, (30, m))
    targets = rng.uniform(-1, 1, 30)
    choice = ss.best_subsets(values, targets)
    bits = ss.subset_bits(m)
    best = np.min(np.abs(values @ bits.T - targets[:, None]), axis=1)
    got = np.abs(np.sum(values * choice, axis=1) - targets)
    np.testing.assert_allclose(got, best, atol=1e-12)


def test_blocked_candidates_are_never_chosen():
  values = np.array([[0.3, np.inf, 0.5], [np.inf, np.inf, 0.2]])
  choice = ss.best_subsets(values, np.array([0.8, 1.0]))
  np.testing.assert_array_equal(choice, [[1, 0, 1], [0, 0, 1]])


def test_vector_subset_sum_exact_and_local_search_no_worse_than_greedy():
  rng = np.random.default_rng(1)
  v = rng.uniform(-1, 1, (10, 3))
  t = rng.uniform(-1, 1, 3)
  bits = ss.subset_bits(10)
  best = np.min(np.sum((bits @ v - t) ** 2, axis=1))
  got = ss.best_vector_subset(v, t)
  np.testing.assert_allclose(np.sum((v[got].sum(0) - t) ** 2), best)
  big = rng.uniform(-1, 1, (60, 4))
  t = rng.uniform(-2, 2, 4)
  got = ss.best_vector_subset(big, t)
  err = np.sum((big[got].sum(0) - t) ** 2)
  # A local optimum: no single flip improves it.
  for i in range(60):
    flip = got.copy()
    flip[i] = ~flip[i]
    assert np.sum((big[flip].sum(0) - t) ** 2) >= err - 1e-12


def _tiny_target(seed=0):
  rng = np.random.default_rng(seed)
  return [rng.normal(0, 0.3, (6, 5)), rng.normal(0, 0.3, (5, 3))]


def test_weight_construction_reaches_a_stated_error_and_improves_with_n():
  kernels = _tiny_target()
  x = np.random.default_rng(2).normal(size=(400, 6))
  y = ss.target_forward(kernels, x)
  errors = {}
  for n in (4, 12, 20):
    errs = []
    for seed in range(3):
      blocks = ss.construct(kernels, n, "weights", seed)
      errs.append(np.linalg.norm(ss.network_forward(blocks, x) - y)
                  / np.linalg.norm(y))
    errors[n] = np.mean(errs)
  assert errors[4] > errors[12] > errors[20]
  assert errors[20] < 0.2  # n = 20 random units per input: within 20%
  blocks = ss.construct(kernels, 20, "weights", 0)
  assert ss.weight_error(blocks, kernels)["mean"] < 0.02


def test_a_block_computes_its_subset_sums_exactly():
  """For x >= 0 the pruned block is x @ w_pos, for x <= 0 it is x @ w_neg;
  every kept weight is the random network's own."""
  w = _tiny_target()[0]
  rng = np.random.default_rng(3)
  for kind in ss.KINDS:
    blk = ss.construct_layer(w, 8, kind, np.random.default_rng(4))
    a, b = ss.random_block(np.random.default_rng(4), 6, 5, 8, 1.0)
    big_a, big_b = blk.matrices()
    x = np.abs(rng.normal(size=(20, 6)))
    np.testing.assert_allclose(ss.relu(x @ big_a) @ big_b, x @ blk.w_pos,
                               atol=1e-12)
    np.testing.assert_allclose(ss.relu(-x @ big_a) @ big_b, -x @ blk.w_neg,
                               atol=1e-12)
    mixed = rng.normal(size=(20, 6))
    np.testing.assert_allclose(blk(mixed, chunk=7),
                               ss.relu(mixed @ big_a) @ big_b, atol=1e-12)
    assert np.all((blk.out == 0) | (blk.out == b))
    assert np.all((blk.unit == 0) | (blk.unit == a))
    assert (big_a != 0).sum() <= 48
    if kind == "units":  # a kept unit keeps all its outgoing weights
      rows = blk.out.reshape(48, 5) != 0
      assert np.all(rows.all(axis=1) | ~rows.any(axis=1))


def test_structured_construction_needs_more_units():
  kernels = _tiny_target()
  x = np.random.default_rng(2).normal(size=(400, 6))
  y = ss.target_forward(kernels, x)
  rel = lambda n, kind: np.linalg.norm(ss.network_forward(
      ss.construct(kernels, n, kind, 0), x) - y) / np.linalg.norm(y)
  assert rel(128, "units") < rel(8, "units")
  assert rel(16, "weights") < rel(16, "units")


def test_unit_density_from_shapes_matches_the_real_masks():
  body = models.build("lenet_300_100", 10, width=0.2, input_shape=(40, 1))
  model = sm.Supermask(body, sm.UnitTopK(), keep=0.3, skip="head")
  shapes = strong.layer_shapes(model, (40, 1))
  assert [s[0] for s in shapes] == ["Dense_0", "Dense_1", "head"]
  params = model.init(jax.random.key(0), jnp.zeros((1, 40, 1)))["params"]
  m = {k: np.asarray(v) for k, v in
       jax.jit(lambda p: sm.hard_masks(model, p))(params).items()}
  units0, units1 = m["Dense_0/kernel"].all(0), m["Dense_1/kernel"].all(0)
  used = (m["Dense_0/kernel"].sum()
          + (units0[:, None] & m["Dense_1/kernel"]).sum()
          + units1.sum() * 10)
  total = sum(int(np.prod(s[1])) for s in shapes)
  got = strong.weight_density("units", shapes, 0.3)
  assert got["effective"] == pytest.approx(used / total)
  assert got["units"] == pytest.approx((units0.sum() + units1.sum())
                                       / (len(units0) + len(units1)))
  every = [(p, sh, True) for p, sh, _ in shapes]  # all layers scored
  assert strong.weight_density("layerwise", every, 0.3)["effective"] == \
      pytest.approx(sum(sm.kept_count(int(np.prod(s[1])), 0.3)
                        for s in every) / total)


def _cfg(**values):
  cfg = config.load(TINY)
  return config.set_values(cfg, values)


@pytest.mark.slow
def test_strong_end_to_end_resume_and_refusal(tmp_path):
  cfg = _cfg(**{"strong.rules": ("units",), "strong.widths": (0.25,),
                "strong.keep": (0.5, 1.0), "strong.imp_levels": 0})
  wd = str(tmp_path / "run")
  summary = strong.run(cfg, wd, progress=False)
  for name in ("config.json", "metrics.jsonl", "summary.json", "report.md",
               "strong_vs_width.png", "strong_vs_density.png",
               "construction.png"):
    assert os.path.exists(os.path.join(wd, name)), name
  assert [(r["rule"], r["keep"]) for r in summary.edge_popup] == [
      ("units", 0.5), ("units", 1.0)]
  assert summary.edge_popup[1]["density"] == 1.0
  assert summary.edge_popup[0]["density"] < 0.5
  for r in summary.edge_popup:
    assert len(r["test_accuracy"]["per_seed"]) == 2
  assert [r["level"] for r in summary.references] == [0]
  kinds = {r["construct"] for r in summary.construction["rows"]}
  assert kinds == {"weights", "units"}
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert {r["stage"] for r in rows} == {"edge_popup_units_w0.25"}
  again = strong.run(cfg, wd, progress=False)  # finished: returned
  assert again.to_json() == summary.to_json()
  other = _cfg(**{"strong.rules": ("units",), "strong.widths": (0.5,)})
  with pytest.raises(Exception, match="different config"):
    strong.run(other, wd, progress=False)


def test_construction_part_alone_writes_its_report(tmp_path):
  cfg = _cfg(**{"strong.parts": ("construction",)})
  wd = tmp_path / "run"
  summary = strong.run(cfg, str(wd), progress=False)
  assert summary.edge_popup == [] and summary.references == []
  c = summary.construction
  assert [(r["construct"], r["factor"]) for r in c["rows"]] == [
      ("weights", 2), ("weights", 4), ("units", 2), ("units", 8)]
  for r in c["rows"]:
    assert 0 < r["density"]["mean"] < 1
    assert len(r["relative_error"]["per_seed"]) == 2
  assert 0.05 < c["target"]["test_accuracy"] <= 1
  text = (wd / "report.md").read_text()
  assert "Strong tickets by construction" in text and "Edge-popup" not in text
  assert (wd / "construction.png").exists()
  assert not (wd / "strong_vs_width.png").exists()


@pytest.mark.parametrize("override,needle", [
    ("--config.strong.keep=0", "strong.keep=0"),
    ("--config.strong.keep=0.5,1.5", "fraction of weights (units) KEPT"),
    ("--config.strong.keep=()", "strong.keep=() is empty"),
    ("--config.strong.keep=0.5,0.5", "repeats a value"),
    ("--config.strong.widths=-1", "strong.widths=-1"),
    ("--config.strong.widths=0.5,1e400", "model.width multiplier"),
    ("--config.strong.rules=topk", "Unknown mask rule 'topk'"),
    ("--config.strong.parts=edge", "Did you mean 'edge_popup'"),
    ("--config.strong.factors=2,30", "integers in [1, 24]"),
    ("--config.strong.unit_factors=0", "strong.unit_factors=0"),
    ("--config.strong.target_hidden=0", "strong.target_hidden=0"),
    ("--config.strong.weight_init=zeros", "signed_constant"),
    ("--config.strong.seeds=0", "strong.seeds=0"),
])
def test_bad_strong_input_is_one_line(override, needle, capsys, tmp_path):
  code = cli.main(["strong", "--config", TINY, "--workdir",
                   str(tmp_path / "w"), override])
  err = capsys.readouterr().err
  assert code == 2
  assert needle in err, err
  assert len(err.strip().splitlines()) == 1
  assert not (tmp_path / "w").exists()  # refused before touching anything


def test_default_strong_section_is_valid():
  cfg = config.default_config()
  settings.validate(cfg)
  tiny = config.load(TINY)
  settings.validate(tiny)
  assert tiny.strong.widths == (0.25, 0.5)
