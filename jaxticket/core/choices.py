"""One helper for every "unknown name" error: names the key, suggests the
closest valid value and lists all of them."""

from __future__ import annotations

import difflib
from typing import Iterable


def check_choice(key: str, value: str, allowed: Iterable[str],
                 what: str = "value") -> None:
  """Raise ``ValueError`` unless ``value`` is one of ``allowed``.

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
  raise ValueError(f"Unknown {what} {value!r} ({key}).{hint} Choose one of: "
                   f"{', '.join(allowed)}.")
