"""The run directory contract (see README, "Run directory").

``--workdir DIR`` holds ``config.json`` (resolved config), ``metrics.jsonl``
(one JSON object per replica per evaluation), ``summary.json`` (per command),
``checkpoints/`` (orbax), ``report.md`` and PNG plots. Files are written
atomically (write to a temporary name, then rename), so a crash never leaves a
half-written summary. In a host-spanning multi-process job only process 0
writes (:func:`jaxticket.runtime.writes_files`); the others compute the same
results and read what process 0 wrote when they resume.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, TypeVar

import ml_collections
import numpy as np

from jaxticket.core import runtime
from jaxticket.core.summary import Summary


S = TypeVar("S", bound=Summary)

class WorkdirError(RuntimeError):
  """The workdir holds something that conflicts with this run."""


def _default(o: Any) -> Any:
  if isinstance(o, np.generic):
    return o.item()
  if isinstance(o, np.ndarray):
    return o.tolist()
  if isinstance(o, tuple):
    return list(o)
  raise TypeError(f"not JSON serializable: {type(o)}")


def write_atomic(path: str, text: str) -> None:
  """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
  if not runtime.writes_files():
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
  with os.fdopen(fd, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_json(path: str, obj: Any) -> None:
  write_atomic(path, json.dumps(obj, indent=2, default=_default) + "\n")


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def config_json(cfg: ml_collections.ConfigDict) -> str:
  """A config as the JSON written to ``config.json`` (sorted keys)."""
  return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=list)


def fill_missing(old: dict, defaults: dict) -> dict:
  """``old`` with the keys it lacks (recursively) taken from ``defaults``."""
  out = dict(old)
  for k, v in defaults.items():
    if k not in out:
      out[k] = v
    elif isinstance(v, dict) and isinstance(out[k], dict):
      out[k] = fill_missing(out[k], v)
  return out


def diff(a: dict, b: dict, prefix: str = "") -> list[str]:
  """Keys whose values differ between two config dicts."""
  out = []
  for k in sorted(set(a) | set(b)):
    va, vb = a.get(k), b.get(k)
    if isinstance(va, dict) and isinstance(vb, dict):
      out += diff(va, vb, f"{prefix}{k}.")
    elif va != vb:
      out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
  return out


class Workdir:
  """One run's directory for one command (``imp``, ``train``, ...)."""

  def __init__(self, path: str, command: str):
    self.path = os.path.abspath(path)
    self.command = command
    try:
      os.makedirs(self.path, exist_ok=True)
    except OSError as e:  # a file of that name, no permission, ...
      raise WorkdirError(f"--workdir {path}: cannot make that directory "
                         f"({e.strerror}: {e.filename}); pass a new or "
                         "existing directory you can write to.") from None

  def file(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  @property
  def summary_path(self) -> str:
    return self.file("summary.json")

  def finished_summary(self) -> dict | None:
    """The summary.json object of a finished run of this command, else
    None."""
    if os.path.exists(self.summary_path):
      summary = read_json(self.summary_path)
      if summary.get("command") == self.command:
        return summary
    return None

  def finished(self, schema: type[S]) -> S | None:
    """The typed summary of a finished run of this command, else None."""
    obj = self.finished_summary()
    return None if obj is None else schema.from_json(obj)

  def claim(self, cfg: ml_collections.ConfigDict,
            defaults: ml_collections.ConfigDict | None = None) -> None:
    """Record the config, refusing a workdir that holds a different run.
    Keys a config.json of an earlier version lacks count as their value in
    ``defaults`` (a key added later is no change to that run)."""
    new = json.loads(config_json(cfg))
    path = self.file("config.json")
    if os.path.exists(path):
      try:
        old = read_json(path)
      except (json.JSONDecodeError, UnicodeDecodeError):
        raise WorkdirError(
            f"{path} is unreadable (damaged). Use a new --workdir, or delete "
            "the file if you are sure the run there used this config."
        ) from None
      old_cmd = old.pop("_command", self.command)
      if defaults is not None:
        old = fill_missing(old, json.loads(config_json(defaults)))
      changes = diff(old, new)
      if old_cmd != self.command or changes:
        what = (f"command {old_cmd!r}" if old_cmd != self.command else
                "a different config: " + "; ".join(changes[:8]))
        fix = ("" if old_cmd != self.command else
               " to start another run, or give the old values "
               "(--config.KEY=OLD) to resume that one")
        raise WorkdirError(
            f"{self.path} already holds a run with {what}. Use a new "
            f"--workdir{fix} (nothing there was changed).")
    write_json(path, {**new, "_command": self.command})

  def restart_metrics(self) -> None:
    """A run that starts from scratch moves old metrics to metrics.jsonl.prev."""
    if not runtime.writes_files():
      return
    if os.path.exists(self.file("metrics.jsonl")):
      os.replace(self.file("metrics.jsonl"), self.file("metrics.jsonl.prev"))

  def truncate_metrics(self, keep) -> None:
    """A resumed run keeps the metrics rows for which ``keep(row)`` holds
    (those up to its checkpoint) and drops the rest, atomically. A torn
    last line (a kill mid-write) is dropped too."""
    path = self.file("metrics.jsonl")
    if not os.path.exists(path):
      return
    rows = []
    with open(path) as f:
      for line in f:
        try:
          rows.append(json.loads(line))
        except json.JSONDecodeError:
          continue
    write_atomic(path, "".join(json.dumps(r, default=_default) + "\n"
                               for r in rows if keep(r)))

  def log_metrics(self, rows: list[dict]) -> None:
    """Append rows to metrics.jsonl (whole lines, flushed and fsynced)."""
    if not runtime.writes_files():
      return
    text = "".join(json.dumps(r, default=_default) + "\n" for r in rows)
    with open(self.file("metrics.jsonl"), "a") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())

  def write_summary(self, summary: Summary | dict) -> None:
    """Write summary.json (atomically), tagged with the command."""
    if isinstance(summary, Summary):
      summary = summary.to_json()
    write_json(self.summary_path, {"command": self.command, **summary})
