"""LSSED (Fan et al. 2021) from a local copy: a TFDS builder over WAV files.

LSSED ("a Large-Scale Dataset and Benchmark for Speech Emotion
Recognition", Fan, Xu, Xing, Chen, Huang, ICASSP 2021; github
tobefans/LSSED) is distributed only by email under an EULA. Its on-disk
layout is NOT published: the repository's README gives only the label ids
of the authors' pre-trained 4-class models (Angry 0, Neutral 1, Happy 2,
Sad 3), which we keep. **We could not verify the real layout.** This
builder therefore reads the two layouts a distributed speech-emotion set
plausibly comes in, both configurable under ``data.lssed.*``:

(a) ``csv``: a metadata file (``data.lssed.metadata``, default
    ``metadata.csv``; ``.tsv`` is read tab-separated) in ``data.dir`` with
    one row per utterance and columns ``data.lssed.path_column`` (a WAV
    path relative to ``data.dir``), ``data.lssed.emotion_column`` and
    ``data.lssed.speaker_column`` ("" = speakers unknown);
(b) ``folders``: one folder per emotion, ``data.dir/<emotion>/**/*.wav``
    (speakers unknown).

``data.lssed.layout=auto`` takes (a) when the metadata file exists, else
(b). Emotion names are matched case-insensitively through
``data.lssed.emotions`` (``class=alias,alias;...`` over the 4 classes, in
the authors' order); any other emotion is dropped, counted and reported
(``data.lssed.unknown=drop``), or refused (``=error``). If the copy you
received differs, adapt it with these options (column names, file name,
aliases) rather than by editing code.

Audio: 16-bit PCM WAV read with the stdlib ``wave`` module, channels
averaged to mono, resampled to 16 kHz by linear interpolation
(:func:`jaxticket.data.speech.resample`), then the centre
``data.lssed.seconds`` kept (longer clips) or zeros appended (shorter
ones). Stored as int16 [T, 1] (half the bytes of float32).

Split: speaker-independent when speakers are known: a fixed permutation
(``data.lssed.split_seed``) of the sorted speaker ids puts
``data.lssed.test_fraction`` of the *speakers* in ``test``; otherwise a
fixed permutation of the files. The validation split that
:func:`jaxticket.data.load` carves from ``train`` is by utterance, so its
speakers overlap train (said in the README).

Everything LSSED-specific (parsing, mapping, splitting) is pure NumPy
here (no tensorflow-datasets import, so configs read it cheaply) and
tested on a generated fixture; the TFDS builder
:class:`jaxticket.data.builders.Lssed` only wraps it.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import json
import os
import wave

import numpy as np

from jaxticket.core.checks import ConfigError, check_choice, check_range
from jaxticket.data import speech

#: The authors' 4 classes, in their label order (tobefans/LSSED README).
CLASSES = ("angry", "neutral", "happy", "sad")
DEFAULT_EMOTIONS = ("angry=angry,anger,ang;neutral=neutral,neu;"
                    "happy=happy,happiness,hap;sad=sad,sadness")
LAYOUTS = ("auto", "csv", "folders")
UNKNOWN = ("drop", "error")
HOMEPAGE = "https://github.com/tobefans/LSSED"


class LssedUnavailableError(ValueError):
  """No usable local copy (one line: the CLI prints it)."""


@dataclasses.dataclass(frozen=True)
class Options:
  """The ``data.lssed`` section (see the module docstring)."""
  layout: str = "auto"
  metadata: str = "metadata.csv"
  path_column: str = "path"
  emotion_column: str = "emotion"
  speaker_column: str = "speaker"
  emotions: str = DEFAULT_EMOTIONS
  unknown: str = "drop"
  seconds: float = 3.0
  test_fraction: float = 0.2
  split_seed: int = 0

  @classmethod
  def from_config(cls, section) -> "Options":
    return cls(**{f.name: type(f.default)(section[f.name])
                  for f in dataclasses.fields(cls) if f.name in section})

  @property
  def length(self) -> int:
    return int(round(self.seconds * speech.SAMPLE_RATE))


def parse_emotions(spec: str) -> dict[str, int]:
  """``'angry=angry,anger;neutral=neu;...'`` -> {alias: class index}; every
  class of :data:`CLASSES` must appear once."""
  table, seen = {}, []
  for part in filter(None, (p.strip() for p in spec.split(";"))):
    name, eq, aliases = part.partition("=")
    name = name.strip().lower()
    if not eq or name not in CLASSES or name in seen:
      raise ConfigError(
          f"data.lssed.emotions={spec!r}: {part!r} is not 'CLASS=alias,...' "
          f"with CLASS one of {', '.join(CLASSES)} (each once); e.g. "
          f"{DEFAULT_EMOTIONS!r}.")
    seen.append(name)
    for alias in filter(None, (a.strip().lower() for a in aliases.split(","))):
      if table.get(alias, CLASSES.index(name)) != CLASSES.index(name):
        raise ConfigError(f"data.lssed.emotions: alias {alias!r} names two "
                          "classes; give it to one.")
      table[alias] = CLASSES.index(name)
  if sorted(seen) != sorted(CLASSES):
    missing = [c for c in CLASSES if c not in seen]
    raise ConfigError(f"data.lssed.emotions={spec!r} lacks {', '.join(missing)}"
                      f"; give all four classes, e.g. {DEFAULT_EMOTIONS!r}.")
  return table


def check_options(o: Options) -> None:
  """Names and ranges of the section, before any file is read."""
  check_choice("data.lssed.layout", o.layout, LAYOUTS)
  check_choice("data.lssed.unknown", o.unknown, UNKNOWN)
  check_range("data.lssed.seconds", 0 < o.seconds <= 60, o.seconds,
              "must be in (0, 60] (clip length after crop/pad)")
  check_range("data.lssed.test_fraction", 0 < o.test_fraction < 1,
              o.test_fraction, "must be in (0, 1)")
  check_range("data.lssed.path_column", bool(o.path_column), o.path_column,
              "must name the metadata column of WAV paths")
  check_range("data.lssed.emotion_column", bool(o.emotion_column),
              o.emotion_column, "must name the metadata column of emotions")
  parse_emotions(o.emotions)


@dataclasses.dataclass(frozen=True)
class Manifest:
  """The kept utterances and what was dropped."""
  layout: str
  paths: tuple[str, ...]  # relative to the folder
  labels: np.ndarray  # [N] int32 in 0..3
  speakers: tuple[str, ...] | None  # None = unknown
  dropped: dict[str, int]  # emotion name -> count

  def summary(self) -> str:
    counts = np.bincount(self.labels, minlength=len(CLASSES))
    kept = ", ".join(f"{c} {n}" for c, n in zip(CLASSES, counts))
    drop = (", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
            or "none")
    who = (f"{len(set(self.speakers))} speakers" if self.speakers else
           "speakers unknown")
    return (f"LSSED ({self.layout} layout, {who}): kept {len(self.labels)} "
            f"({kept}); dropped {sum(self.dropped.values())} ({drop}).")


def _unavailable(folder: str, what: str) -> LssedUnavailableError:
  return LssedUnavailableError(
      f"data.name=lssed reads a local copy of LSSED, but data.dir={folder!r} "
      f"{what}. Fix: --config.data.dir=/path/to/your/LSSED copy (LSSED is "
      f"sent by its authors under an EULA: {HOMEPAGE}); if its layout differs,"
      " set --config.data.lssed.layout / .metadata / .path_column / "
      ".emotion_column / .speaker_column.")


def check_folder(folder: str) -> None:
  """A one-line error unless ``folder`` is a non-empty folder."""
  if not folder:
    raise _unavailable(folder, "is empty")
  if not os.path.isdir(folder):
    raise _unavailable(folder, "is not a folder")
  if not os.listdir(folder):
    raise _unavailable(folder, "holds no files")


def _map(emotion: str, table: dict[str, int], o: Options, where: str
         ) -> int | None:
  label = table.get(emotion.strip().lower())
  if label is None and o.unknown == "error":
    raise ConfigError(
        f"{where}: emotion {emotion!r} is none of the aliases in "
        "data.lssed.emotions; add it there (CLASS=...,alias) or set "
        "--config.data.lssed.unknown=drop.")
  return label


def _read_csv(folder: str, o: Options, table: dict[str, int]) -> Manifest:
  path = os.path.join(folder, o.metadata)
  with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(
        f, delimiter="\t" if o.metadata.endswith(".tsv") else ","))
  columns = list(rows[0].keys()) if rows else []
  keys = [("data.lssed.path_column", o.path_column),
          ("data.lssed.emotion_column", o.emotion_column)]
  if o.speaker_column:
    keys.append(("data.lssed.speaker_column", o.speaker_column))
  for key, col in keys:
    if col not in columns:
      raise ConfigError(
          f"{key}={col!r} is not a column of {path} (columns: "
          f"{', '.join(columns) or 'none'}); set --config.{key}=<one of them>"
          + (" or --config.data.lssed.speaker_column='' (speakers unknown)"
             if key.endswith("speaker_column") else "") + ".")
  paths, labels, speakers, dropped = [], [], [], collections.Counter()
  for i, row in enumerate(rows):
    label = _map(row[o.emotion_column], table, o, f"{path} row {i + 2}")
    if label is None:
      dropped[row[o.emotion_column].strip().lower()] += 1
      continue
    paths.append(row[o.path_column].strip())
    labels.append(label)
    if o.speaker_column:
      speakers.append(row[o.speaker_column].strip())
  return Manifest("csv", tuple(paths), np.asarray(labels, np.int32),
                  tuple(speakers) if o.speaker_column else None, dict(dropped))


def _read_folders(folder: str, o: Options, table: dict[str, int]) -> Manifest:
  paths, labels, dropped = [], [], collections.Counter()
  for name in sorted(os.listdir(folder)):
    sub = os.path.join(folder, name)
    if not os.path.isdir(sub):
      continue
    wavs = sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(sub) for f in files
                  if f.lower().endswith(".wav"))
    label = _map(name, table, o, f"folder {sub}") if wavs else None
    if label is None:
      if wavs:
        dropped[name.lower()] += len(wavs)
      continue
    paths += wavs
    labels += [label] * len(wavs)
  return Manifest("folders", tuple(paths), np.asarray(labels, np.int32), None,
                  dict(dropped))


def scan(folder: str, o: Options) -> Manifest:
  """The utterances of a local copy (no audio read yet)."""
  check_folder(folder)
  table = parse_emotions(o.emotions)
  layout = o.layout
  if layout == "auto":
    layout = ("csv" if os.path.isfile(os.path.join(folder, o.metadata))
              else "folders")
  if layout == "csv" and not os.path.isfile(os.path.join(folder, o.metadata)):
    raise _unavailable(folder, f"has no metadata file {o.metadata!r} "
                       "(data.lssed.metadata)")
  m = (_read_csv if layout == "csv" else _read_folders)(folder, o, table)
  if not len(m.labels):
    raise _unavailable(folder, f"holds no utterance of the 4 classes in the "
                       f"{layout} layout ({m.summary()})")
  return m


def split(m: Manifest, o: Options) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, test indices), each sorted. By speaker when known: a
  fixed permutation of the sorted speaker ids, the first
  ``round(test_fraction * speakers)`` (at least 1) held out; else by file."""
  rng = np.random.default_rng(o.split_seed)
  if m.speakers is not None:
    ids = sorted(set(m.speakers))
    if len(ids) < 2:
      raise ConfigError(
          f"data.lssed.speaker_column={o.speaker_column!r} names only "
          f"{len(ids)} speaker; a speaker-independent split needs >= 2 (or "
          "set --config.data.lssed.speaker_column='' to split by file).")
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_test = min(len(ids) - 1, max(1, int(round(o.test_fraction * len(ids)))))
    held = set(order[:n_test])
    test = np.asarray([s in held for s in m.speakers])
  else:
    n = len(m.labels)
    if n < 2:
      raise _unavailable("", "holds fewer than 2 utterances")
    n_test = min(n - 1, max(1, int(round(o.test_fraction * n))))
    test = np.zeros(n, bool)
    test[rng.permutation(n)[:n_test]] = True
  return np.flatnonzero(~test), np.flatnonzero(test)


def read_pcm16(path: str) -> tuple[np.ndarray, int]:
  """(float32 mono samples in [-1, 1], rate) of a 16-bit PCM WAV, channels
  averaged."""
  try:
    with wave.open(path, "rb") as w:
      width, channels = w.getsampwidth(), w.getnchannels()
      rate, raw = w.getframerate(), w.readframes(w.getnframes())
  except (wave.Error, EOFError) as e:
    raise ValueError(f"{path}: not a PCM WAV file ({e}).") from None
  if width != 2:
    raise ValueError(f"{path}: {8 * width}-bit samples; LSSED is read as "
                     "16-bit PCM (convert, e.g. sox IN -b 16 OUT).")
  x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
  return x.reshape(-1, channels).mean(1), rate


def centre(x: np.ndarray, length: int) -> np.ndarray:
  """The centre ``length`` samples of ``x``, or ``x`` with zeros appended."""
  if len(x) >= length:
    start = (len(x) - length) // 2
    return x[start:start + length]
  return np.pad(x, (0, length - len(x)))


def clip(folder: str, rel: str, length: int) -> np.ndarray:
  """[length, 1] int16: one utterance at 16 kHz, mono, cropped/padded."""
  path = os.path.join(folder, rel)
  if not os.path.isfile(path):
    raise LssedUnavailableError(
        f"data.dir={folder!r}: {rel!r} (from the metadata) is not a file; "
        "check data.lssed.path_column and that paths are relative to data.dir.")
  x = centre(speech.resample(*read_pcm16(path)), length)
  return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(
      np.int16)[:, None]


def digest(folder: str, o: Options, m: Manifest) -> str:
  """Names a prepared copy: the options, the kept files with their sizes
  and labels, the metadata bytes (never the audio bytes: LSSED is large)."""
  h = hashlib.sha256(json.dumps(dataclasses.asdict(o), sort_keys=True)
                     .encode())
  for rel, label in zip(m.paths, m.labels):
    size = os.path.getsize(os.path.join(folder, rel)) if os.path.isfile(
        os.path.join(folder, rel)) else -1
    h.update(f"{rel}\0{label}\0{size}\n".encode())
  if m.speakers:
    h.update("\0".join(m.speakers).encode())
  return h.hexdigest()[:16]
