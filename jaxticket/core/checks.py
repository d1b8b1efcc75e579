"""Checks of user input that name the key and the fix.

Every bad config value, unknown name or impossible setting raises
:class:`ConfigError` (a ``ValueError``) with a one-line message naming the
config key, what was given and what is allowed; the command prints it and
exits 2 before any compute.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Iterable


class ConfigError(ValueError):
  """A config value is unknown, of the wrong type or out of range."""


def check_choice(key: str, value: str, allowed: Iterable[str],
                 what: str = "value") -> None:
  """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``,
  suggesting the closest valid value and listing all of them.

  Args:
    key: the config key to set, e.g. ``model.name``.
    value: the given value.
    allowed: the valid values.
    what: a noun for the message, e.g. ``model``.
  """
  allowed = list(allowed)
  if value in allowed:
    return
  text = str(value).lower()
  close = [a for a in allowed if text and (text in a.lower() or
                                           a.lower() in text)]
  close = close or difflib.get_close_matches(str(value), allowed, n=1)
  hint = f" Did you mean {close[0]!r}?" if close else ""
  raise ConfigError(f"Unknown {what} {value!r} ({key}).{hint} Choose one of: "
                    f"{', '.join(allowed)}.")


def check_choices(key: str, values: Iterable[str], allowed: Iterable[str],
                  what: str = "value") -> None:
  """A non-empty list of distinct ``allowed`` names (``dst.methods``,
  ``benchmark.datasets``, ...): one :class:`ConfigError` line for an empty
  list, an unknown name (as :func:`check_choice`) or a repeat."""
  values, allowed = tuple(values), list(allowed)
  if not values:
    raise ConfigError(f"{key} is empty: name at least one {what} of "
                      f"{', '.join(allowed)}.")
  for v in values:
    check_choice(key, v, allowed, what)
  if len(set(values)) != len(values):
    raise ConfigError(f"{key}={values!r} repeats a {what}: give each once.")


def check_range(key: str, ok: bool, value: Any, allowed: str) -> None:
  """Raise :class:`ConfigError` naming ``key`` and ``allowed`` unless ``ok``."""
  if not ok:
    raise ConfigError(f"{key}={value!r} is out of range: {allowed}.")


def check_regex(key: str, value: str, example: str) -> None:
  """Refuse a value that is not a valid Python regular expression."""
  try:
    re.compile(value)
  except re.error as e:
    raise ConfigError(f"{key}={value!r} is not a valid regular expression "
                      f"({e}); give a Python regex over parameter paths such "
                      f"as Dense_0/kernel, e.g. --config.{key}='{example}'."
                      ) from None


def check_nonempty(key: str, values: Any, example: str) -> None:
  """Refuse an empty tuple of values (``example``: what to give)."""
  if not len(values):
    raise ConfigError(f"{key}=() is empty: give one or more values, "
                      f"{example}.")


def check_distinct(key: str, values: Any) -> None:
  """Refuse a tuple of values that repeats one."""
  if len(set(values)) != len(values):
    raise ConfigError(f"{key}={tuple(values)!r} repeats a value: give each "
                      "value once.")


def is_number(x: Any) -> bool:
  """A finite int or float (not a bool's string, not NaN or inf)."""
  return isinstance(x, (int, float)) and math.isfinite(x)


__all__ = ["ConfigError", "check_choice", "check_choices", "check_range",
           "check_regex",
           "check_nonempty", "check_distinct", "is_number"]
