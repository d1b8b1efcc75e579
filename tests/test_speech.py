"""Speech data and model: the espeak-ng prosody set (synthetic prosody, not
emotion), the log-mel CNN, and `sanity` on audio offline."""

import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxticket import config
from jaxticket import models
from jaxticket.data import speech

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed")


def voiced_seconds(x, sr=speech.SAMPLE_RATE, frame=160):
  energy = np.square(x[: len(x) // frame * frame]).reshape(-1, frame).mean(1)
  return (energy > 0.01 * energy.max()).sum() * frame / sr


@needs_espeak
def test_generated_clips_follow_their_classes():
  clips, labels = speech.generate(per_class=2, seed=0, seconds=1.5)
  assert clips.shape == (16, 24000) and clips.dtype == np.float32
  np.testing.assert_array_equal(labels, np.tile(np.arange(8), 2))
  assert np.all(np.abs(clips).max(1) > 0.4) and np.abs(clips).max() <= 1.0
  # the same word at speed 130 lasts longer than at speed 260
  x_slow = speech.resample(*_one("seven", "en-us+m3", 50, 130))
  x_fast = speech.resample(*_one("seven", "en-us+m3", 50, 260))
  assert voiced_seconds(x_slow) > 1.4 * voiced_seconds(x_fast)
  again, _ = speech.generate(per_class=2, seed=0, seconds=1.5)
  np.testing.assert_array_equal(clips, again)  # one seed, one set


def _one(word, voice, pitch, speed, tmp="/tmp/jaxticket_speech_test.wav"):
  speech.synthesize(word, voice, pitch, speed, tmp)
  return speech.read_wav(tmp)


def test_resample_keeps_a_tone():
  t = np.arange(22050) / 22050
  x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
  y = speech.resample(x, 22050)
  assert len(y) == 16000
  spec = np.abs(np.fft.rfft(y))
  assert abs(np.argmax(spec) - 440) <= 1  # 1 Hz bins over one second


def test_logmel_cnn_shapes_and_gambler_head():
  for outputs in (8, 9):
    net = models.build("logmel_cnn", outputs, 0.25, input_shape=(4000, 1))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4000, 1)),
                    jnp.float32)
    variables = net.init(jax.random.key(0), x, train=False)
    out = net.apply(variables, x, train=False)
    assert out.shape == (3, outputs) and bool(jnp.all(jnp.isfinite(out)))
    assert variables["params"]["head"]["kernel"].shape[1] == outputs


@needs_espeak
@pytest.mark.slow
def test_sanity_runs_on_speech_offline(tmp_path):
  from jaxticket.experiments.sanity import sanity
  root = pathlib.Path(__file__).resolve().parent.parent
  cfg = config.load(str(root / "configs/speech_espeak_logmel_cnn.py") +
                    ":tiny")
  cfg.data.data_dir = str(tmp_path / "tfds")
  summary = sanity.run(cfg, str(tmp_path / "run"), progress=False)
  assert summary.dataset == "espeak_prosody"
  assert summary.verdicts and summary.selective
  for f in ("report.md", "summary.json", "metrics.jsonl", "config.json"):
    assert (tmp_path / "run" / f).exists()


def test_missing_espeak_is_one_line_naming_the_fix(monkeypatch):
  monkeypatch.setattr(speech.shutil, "which", lambda name: None)
  with pytest.raises(ValueError) as err:
    speech.generate(per_class=1, seed=0)
  assert "apt-get install espeak-ng" in str(err.value)
  assert "data.name=espeak_prosody" in str(err.value)
  assert "\n" not in str(err.value)
