"""The log-mel front end (models/audio.py) against NumPy references and the
peak of a synthesized tone."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.models import audio

SR = 16000


def np_log_mel(x, n_fft, hop, n_mels, eps=1e-6):
  """Independent NumPy reference: loops over frames and bands."""
  xp = np.pad(x, n_fft // 2, mode="reflect")
  win = np.hanning(n_fft + 1)[:-1]  # periodic Hann
  frames = [xp[i:i + n_fft] * win for i in range(0, len(xp) - n_fft + 1, hop)]
  power = np.abs(np.fft.rfft(np.array(frames), axis=-1)) ** 2
  mel = lambda f: 2595 * np.log10(1 + f / 700)
  inv = lambda m: 700 * (10 ** (m / 2595) - 1)
  pts = inv(np.linspace(mel(0), mel(SR / 2), n_mels + 2))
  freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
  fb = np.zeros((n_fft // 2 + 1, n_mels))
  for b in range(n_mels):
    for k, f in enumerate(freqs):
      if pts[b] <= f <= pts[b + 1]:
        fb[k, b] = (f - pts[b]) / (pts[b + 1] - pts[b])
      elif pts[b + 1] < f <= pts[b + 2]:
        fb[k, b] = (pts[b + 2] - f) / (pts[b + 2] - pts[b + 1])
  return np.log(power @ fb + eps)


def tone(freq, seconds=0.5):
  t = np.arange(int(SR * seconds)) / SR
  return np.sin(2 * np.pi * freq * t).astype(np.float32)


def test_log_mel_matches_numpy_reference():
  rng = np.random.default_rng(0)
  x = (rng.normal(size=4000) * 0.1 + tone(440, 0.25)).astype(np.float32)
  got = audio.log_mel(jnp.asarray(x), SR, n_fft=400, hop=160, n_mels=40)
  want = np_log_mel(x.astype(np.float64), 400, 160, 40)
  assert got.shape == want.shape == (1 + 4000 // 160, 40)
  np.testing.assert_allclose(got, want, atol=2e-3, rtol=1e-3)


def test_tone_peaks_in_the_mel_band_containing_its_frequency():
  n_mels = 40
  centers = audio.mel_points(n_mels, 0, SR / 2)[1:-1]
  for freq in (300.0, 1000.0, 2500.0, 6000.0):
    feats = np.asarray(audio.log_mel(jnp.asarray(tone(freq)), SR,
                                     n_mels=n_mels))
    band = int(np.argmax(feats[5:-5].mean(0)))  # frames away from the edges
    want = int(np.argmin(np.abs(audio.hz_to_mel(centers)
                                - audio.hz_to_mel(freq))))
    assert band == want, (freq, band, want)


def test_log_mel_jits_and_vmaps_over_clips():
  clips = jnp.stack([jnp.asarray(tone(f, 0.1)) for f in (200.0, 3000.0)])
  fn = jax.jit(jax.vmap(lambda c: audio.log_mel(c, SR, n_mels=24)))
  batched = fn(clips)
  assert batched.shape == (2, 1 + 1600 // 160, 24)
  np.testing.assert_allclose(batched[1], audio.log_mel(clips[1], SR,
                                                       n_mels=24),
                             rtol=1e-5, atol=1e-4)
  assert int(batched[0].mean(0).argmax()) < int(batched[1].mean(0).argmax())


def test_filterbank_triangles_peak_at_their_centers():
  fb = audio.mel_filterbank(SR, 512, 20)
  assert fb.shape == (257, 20) and fb.min() >= 0 and fb.max() <= 1
  freqs = np.linspace(0, SR / 2, 257)
  centers = audio.mel_points(20, 0, SR / 2)[1:-1]
  np.testing.assert_array_less(np.abs(freqs[fb.argmax(0)] - centers),
                               SR / 512 + 1e-9)
