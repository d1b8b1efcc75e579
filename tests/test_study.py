import json

import pytest

from jaxticket import config
from jaxticket.experiments.study import study


def test_parse_factor_types_and_tuples():
  cfg = config.default_config("tiny")
  key, values, texts = config.parse_axis(cfg, "model.width=0.5,1,2")
  assert key == "model.width" and values == [0.5, 1.0, 2.0]
  _, values, _ = config.parse_axis(cfg, "model.residual=true,false")
  assert values == [True, False]
  _, values, texts = config.parse_axis(cfg, "sanity.lrs=0.01,0.1;0.3")
  assert values == [(0.01, 0.1), (0.3,)] and texts == ["0.01,0.1", "0.3"]
  with pytest.raises(config.ConfigError, match="Did you mean model.width"):
    config.parse_axis(cfg, "model.widht=1,2")
  with pytest.raises(config.ConfigError, match="KEY=V1,V2"):
    config.parse_axis(cfg, "model.width")


@pytest.mark.slow  # ~35 s: two whole (tiny) sanity checks
def test_study_end_to_end(tmp_path):
  cfg = config.default_config("tiny")
  cfg.train.steps = 20
  cfg.train.eval_every = 20
  cfg.sanity.lrs = (0.1, 0.3)
  result = study.run(cfg, "model.width=0.125,0.25", str(tmp_path),
                     progress=False)
  assert [r["value"] for r in result["rows"]] == ["0.125", "0.25"]
  for r in result["rows"]:
    assert 0 <= r["best_dense_accuracy"] <= 1
    assert r["lt_rr_gap"] is not None and r["imp_omp_gap"] is not None
    assert r["class_at_sparsity"] in ("jackpot", "secondary", "none")
  for name in ("summary.json", "report.md", "study.png"):
    assert (tmp_path / name).exists()
  sub = json.loads((tmp_path / "model.width=0.25" / "config.json").read_text())
  assert sub["model"]["width"] == 0.25
  assert "| model.width |" in (tmp_path / "report.md").read_text()
