"""Synthetic speech offline: prosody classes spoken by the espeak-ng
synthesizer (Debian ``espeak-ng``).

Honest about what it is: *synthetic prosody*, not emotion. A class is a
combination of voice variant (``en-us+m3`` or ``en-us+f3``), pitch
(``-p`` 25 or 75) and speed (``-s`` 130 or 260 words per minute): 8
classes. Each clip says one word drawn from :data:`WORDS` with a random
amplitude and a random start offset, so the word is a nuisance and the
class must be read from how it is said. Clips are resampled from
espeak-ng's 22050 Hz to 16 kHz (linear interpolation) and cropped or
zero-padded to ``seconds``. Everything is drawn from one seed: the same
arguments give the same set on every machine with the same espeak-ng.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np

SAMPLE_RATE = 16000
VOICES = ("en-us+m3", "en-us+f3")
PITCHES = (25, 75)
SPEEDS = (130, 260)
#: class index -> (voice, pitch, speed), voice-major.
CLASSES = tuple(itertools.product(VOICES, PITCHES, SPEEDS))
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven",
         "eight", "nine", "yes", "no", "up", "down", "left", "right", "on",
         "off", "stop", "go")


class EspeakUnavailableError(ValueError):
  """espeak-ng is not installed (a ValueError: the CLI prints one line)."""


def class_name(label: int) -> str:
  voice, pitch, speed = CLASSES[label]
  return f"{voice} pitch {pitch} speed {speed}"


def read_wav(path: str) -> tuple[np.ndarray, int]:
  """(float32 samples in [-1, 1], sample rate) of a 16-bit mono WAV."""
  with wave.open(path, "rb") as w:
    if w.getsampwidth() != 2 or w.getnchannels() != 1:
      raise ValueError(f"{path}: expected 16-bit mono PCM.")
    raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0, \
        w.getframerate()


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE
             ) -> np.ndarray:
  """Linear-interpolation resampling (enough for log-mel features below
  8 kHz; espeak-ng's output has little energy near Nyquist)."""
  if rate == target:
    return x
  n = int(round(len(x) * target / rate))
  return np.interp(np.arange(n) * rate / target, np.arange(len(x)),
                   x).astype(np.float32)


def synthesize(word: str, voice: str, pitch: int, speed: int, path: str
               ) -> None:
  """One espeak-ng utterance into a WAV file."""
  subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s",
                  str(speed), "-w", path, word], check=True,
                 capture_output=True)


def fit(x: np.ndarray, length: int, offset: int) -> np.ndarray:
  """``x`` placed at ``offset`` in a zero clip of ``length`` samples."""
  out = np.zeros(length, np.float32)
  x = x[: max(0, length - offset)]
  out[offset:offset + len(x)] = x
  return out


def generate(per_class: int, seed: int, seconds: float = 0.8
             ) -> tuple[np.ndarray, np.ndarray]:
  """(clips [N, T] float32, labels [N] int32), ``per_class`` clips of each
  of the :data:`CLASSES`, class-interleaved."""
  if shutil.which("espeak-ng") is None:
    raise EspeakUnavailableError(
        "data.name=espeak_prosody needs the espeak-ng synthesizer: "
        "apt-get install espeak-ng (Debian/Ubuntu).")
  rng = np.random.default_rng(seed)
  length = int(seconds * SAMPLE_RATE)
  clips, labels = [], []
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "clip.wav")
    for _ in range(per_class):
      for label, (voice, pitch, speed) in enumerate(CLASSES):
        synthesize(str(rng.choice(WORDS)), voice, pitch, speed, path)
        x, rate = read_wav(path)
        x = resample(x, rate)
        x = x * np.float32(rng.uniform(0.5, 1.0) / (np.abs(x).max() + 1e-6))
        offset = int(rng.integers(0, SAMPLE_RATE // 10))
        clips.append(fit(x, length, offset))
        labels.append(label)
  return np.stack(clips), np.asarray(labels, np.int32)
