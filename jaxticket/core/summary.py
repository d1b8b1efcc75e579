"""Typed run summaries with a schema version.

Each experiment's ``summary.json`` is a :class:`Summary` dataclass: its
fields are the file's keys (plus ``command``, ``schema`` and
``schema_version``), so reports, the CLI and tools that combine runs (study,
sweep) read fields the type checker knows. ``summary["key"]`` still works for
code and notebooks written against the plain-dict summaries of earlier
versions. A file written by a newer schema version than this code knows is
refused with a clear error; older versions load (missing optional fields
take their defaults).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="Summary")


class SchemaError(ValueError):
  """A summary.json this version of jaxticket cannot read."""


@dataclasses.dataclass
class Summary:
  """Base of every experiment's summary. Subclasses set ``SCHEMA`` (a name)
  and ``VERSION`` (bumped when a field changes meaning or is removed)."""
  SCHEMA: ClassVar[str] = ""
  VERSION: ClassVar[int] = 1

  def to_json(self) -> dict:
    """The summary.json object (without ``command``, which the run
    directory adds)."""
    out = {"schema": self.SCHEMA, "schema_version": self.VERSION}
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if value is not None or f.default is not None:
        out[f.name] = value
    return out

  @classmethod
  def from_json(cls: type[S], obj: dict) -> S:
    """Read a summary.json object (keys not in the schema are ignored)."""
    version = obj.get("schema_version", 1)
    if version > cls.VERSION:
      raise SchemaError(
          f"summary.json has {cls.SCHEMA} schema version {version}, newer "
          f"than this jaxticket reads ({cls.VERSION}); upgrade jaxticket.")
    names = {f.name for f in dataclasses.fields(cls)}
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in obj and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
      raise SchemaError(f"summary.json lacks {missing} of the {cls.SCHEMA} "
                        "schema; was it written by this command?")
    return cls(**{k: v for k, v in obj.items() if k in names})

  # Read access like the plain dicts of earlier versions.
  def __getitem__(self, key: str) -> Any:
    if key in ("schema", "schema_version"):
      return self.SCHEMA if key == "schema" else self.VERSION
    if key not in {f.name for f in dataclasses.fields(self)}:
      raise KeyError(key)
    return getattr(self, key)

  def __contains__(self, key: str) -> bool:
    try:
      return self[key] is not None
    except KeyError:
      return False

  def get(self, key: str, default: Any = None) -> Any:
    try:
      value = self[key]
    except KeyError:
      return default
    return default if value is None else value

  def keys(self) -> list[str]:
    return list(self.to_json())


__all__ = ["Summary", "SchemaError"]
