"""`task.loss=gambler` across the commands built on common.setup: a
reference run trained under another loss is refused, not silently mixed
(the gambler's net has one more output; its curve is another task's)."""

import json

import pytest

from jaxticket import config as config_lib
from jaxticket.core.checks import ConfigError
from jaxticket.core.workdir import config_json
from jaxticket.experiments import common


def fake_run(path, command, **values):
  """A workdir holding only a config.json (and a stub summary.json)."""
  path.mkdir()
  cfg = config_lib.set_values(config_lib.default_config("tiny"), values)
  (path / "config.json").write_text(json.dumps(
      {**json.loads(config_json(cfg)), "_command": command}))
  (path / "summary.json").write_text(json.dumps({"command": command}))
  return str(path)


def gambler():
  return config_lib.set_values(config_lib.default_config("tiny"),
                               {"task.loss": "gambler", "task.payoff": 2.2})


def test_task_changes_names_the_keys(tmp_path):
  ce = fake_run(tmp_path / "ce", "imp")
  assert common.task_changes(config_lib.default_config("tiny"), ce) == []
  changes = common.task_changes(gambler(), ce)
  assert any(c.startswith("task.loss") for c in changes)
  assert common.task_changes(gambler(), str(tmp_path / "none")) == []


def test_pai_refuses_an_imp_reference_of_another_loss(tmp_path):
  from jaxticket.experiments.pai import pai
  ce = fake_run(tmp_path / "ce", "imp")
  with pytest.raises(ConfigError) as err:
    pai.read_imp_reference(ce, gambler())
  msg = str(err.value)
  assert "pai.imp_workdir=" in msg and "task.loss" in msg and "\n" not in msg


def test_dst_and_lmc_refuse_a_ticket_of_another_loss(tmp_path):
  from jaxticket.experiments.dst import dst
  from jaxticket.experiments.lmc import lmc
  ce = fake_run(tmp_path / "ce", "imp")
  with pytest.raises(ConfigError, match="task.loss"):
    dst.check_imp_source(gambler(), ce, "ticket")
  with pytest.raises(ConfigError, match="task.loss"):
    lmc.check_source(gambler(), ce)
  lmc.check_source(config_lib.default_config("tiny"), ce)  # same task: fine
