"""Tasks: what a network learns (loss and metrics), one file each.

Every task implements :class:`jaxticket.core.task.Task`. ``get(name)``
builds one by its registry name; datasets say which task they serve
(``Dataset.task``). ``build`` also applies the config's ``task.loss``: a
classification dataset trains with cross-entropy (``ce``) or with Deep
Gamblers' loss and an abstain output (``gambler``).
"""

from __future__ import annotations

from jaxticket.core.checks import ConfigError, check_choice
from jaxticket.core.task import Task
from jaxticket.tasks.classification import Classification
from jaxticket.tasks.gambler import Gambler
from jaxticket.tasks.regression import Regression
from jaxticket.tasks.mlm import MaskedLM
from jaxticket.tasks.penalized import Penalized

TASKS = {"classification": Classification, "regression": Regression,
         "mlm": MaskedLM}
#: Values of ``task.loss``.
LOSSES = ("ce", "gambler")


def get(name: str, **options) -> Task:
  """The task registered as ``name`` (``options``: e.g. MLM's
  ``vocab_size``)."""
  check_choice("task", name, TASKS, "task")
  return TASKS[name](**options)


def build(name: str, loss: str = "ce", payoff: float = 2.2,
          pretrain_steps: int = 0, num_classes: int | None = None) -> Task:
  """The task of a dataset (``name``) trained with ``loss``; ``gambler``
  needs a classification dataset and a payoff in (1, num_classes]."""
  check_choice("task.loss", loss, LOSSES)
  if loss == "ce":
    return get(name)
  if name != "classification":
    raise ConfigError(f"task.loss=gambler needs a classification dataset; "
                      f"this one's task is {name!r}: use task.loss=ce.")
  if num_classes is not None and not 1 < payoff <= num_classes:
    raise ConfigError(f"task.payoff={payoff} is out of range: must be in "
                      f"(1, {num_classes}] (1 < o <= number of classes).")
  return Gambler(payoff=float(payoff), pretrain_steps=int(pretrain_steps))


def extra_outputs(task: Task) -> int:
  """Outputs the model needs beyond the classes (1 for the abstain one)."""
  return int(getattr(task, "extra_outputs", 0))


__all__ = ["Task", "Classification", "Gambler", "Regression", "MaskedLM",
           "Penalized", "TASKS",
           "LOSSES", "get", "build", "extra_outputs"]
