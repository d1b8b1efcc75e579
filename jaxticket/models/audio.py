"""Audio front end in JAX: log-mel features of a waveform.

Pure functions of one clip (no jit/vmap here; the training loop vmaps the
model that calls them), so features are computed inside the compiled
program, on the accelerator, from raw 16 kHz waveforms:

- framing by gather (``frame``; ``center=True`` pads n_fft // 2 on both
  sides by reflection, as librosa's STFT does), a periodic Hann window,
  the power spectrum by ``jnp.fft.rfft``;
- a triangular mel filterbank on the HTK mel scale
  ``mel(f) = 2595 log10(1 + f / 700)`` (librosa's ``mel(htk=True,
  norm=None)``): ``n_mels + 2`` points equally spaced in mel between
  ``fmin`` and ``fmax``, band i rising from point i to i+1 and falling to
  i+2;
- ``log(mel power + eps)``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxticket.models.layers import ConvBN, scaled


def hz_to_mel(f):
  """HTK mel scale (O'Shaughnessy 1987, as HTK and librosa htk=True)."""
  return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
  return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_points(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
  """The n_mels + 2 edge/center frequencies (Hz) of the filterbank."""
  return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int,
                   fmin: float = 0.0, fmax: float | None = None
                   ) -> np.ndarray:
  """[n_fft // 2 + 1, n_mels] triangular weights (peak 1, no area norm);
  a constant of the program (NumPy, float32)."""
  fmax = sample_rate / 2 if fmax is None else fmax
  freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
  pts = mel_points(n_mels, fmin, fmax)
  lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
  up = (freqs[None] - lo) / (mid - lo)
  down = (hi - freqs[None]) / (hi - mid)
  return np.maximum(0.0, np.minimum(up, down)).T.astype(np.float32)


def frame(x: jax.Array, n_fft: int, hop: int, center: bool = True
          ) -> jax.Array:
  """[..., frames, n_fft] overlapping windows of signals [..., T] (the last
  axis is time; leading axes, e.g. a batch, pass through)."""
  if center:
    pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    x = jnp.pad(x, pad, mode="reflect")
  count = 1 + (x.shape[-1] - n_fft) // hop
  idx = hop * np.arange(count)[:, None] + np.arange(n_fft)[None]
  return x[..., idx]


def hann(n: int) -> np.ndarray:
  """Periodic Hann window (scipy's ``get_window('hann', n)``)."""
  return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(
      np.float32)


def power_spectrogram(x: jax.Array, n_fft: int = 400, hop: int = 160
                      ) -> jax.Array:
  """[..., frames, n_fft // 2 + 1] |STFT|^2, periodic Hann window."""
  spec = jnp.fft.rfft(frame(x, n_fft, hop) * hann(n_fft), axis=-1)
  return jnp.real(spec) ** 2 + jnp.imag(spec) ** 2


def log_mel(x: jax.Array, sample_rate: int = 16000, n_fft: int = 400,
            hop: int = 160, n_mels: int = 40, fmin: float = 0.0,
            fmax: float | None = None, eps: float = 1e-6) -> jax.Array:
  """[..., frames, n_mels] log-mel energies of waveforms ``x`` [..., T]
  (defaults: 25 ms windows, 10 ms hop at 16 kHz, 40 bands)."""
  fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
  return jnp.log(power_spectrogram(x.astype(jnp.float32), n_fft, hop) @ fb
                 + eps)


class LogMelCNN(nn.Module):
  """A small 1-D conv net on log-mel features of raw waveforms [B, T, 1]:
  :func:`log_mel` (per-clip mean removed from each band, a cepstral-mean
  normalization, then divided by the clip's feature std), ``depth`` conv-ReLU layers of kernel 5 over time (stride
  2 on the first three; bands are channels), global average pooling over
  time and the ``head``."""
  num_classes: int
  width: float = 1.0
  depth: int = 3
  sample_rate: int = 16000
  n_mels: int = 40

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    feats = log_mel(x[..., 0], self.sample_rate, n_mels=self.n_mels)
    feats = feats - feats.mean(axis=-2, keepdims=True)
    x = feats / (jnp.std(feats, axis=(-2, -1), keepdims=True) + 1e-5)
    for i in range(self.depth):
      x = ConvBN(scaled(32, self.width), (5,), strides=2 if i < 3 else 1,
                 norm=False)(x, train)
    x = x.mean(axis=-2)
    return nn.Dense(self.num_classes, name="head")(x)
