"""Tasks: what a network learns (loss and metrics), one file each.

Every task implements :class:`jaxticket.core.task.Task`. ``get(name)``
builds one by its registry name; datasets say which task they serve
(``Dataset.task``).
"""

from __future__ import annotations

from jaxticket.core.checks import check_choice
from jaxticket.core.task import Task
from jaxticket.tasks.classification import Classification
from jaxticket.tasks.regression import Regression
from jaxticket.tasks.mlm import MaskedLM

TASKS = {"classification": Classification, "regression": Regression,
         "mlm": MaskedLM}


def get(name: str, **options) -> Task:
  """The task registered as ``name`` (``options``: e.g. MLM's
  ``vocab_size``)."""
  check_choice("task", name, TASKS, "task")
  return TASKS[name](**options)


__all__ = ["Task", "Classification", "Regression", "MaskedLM", "TASKS", "get"]
