"""Datasets as in-memory arrays, loaded through tensorflow-datasets.

``load(name)`` returns a :class:`Dataset` with train/validation/test arrays.
Small datasets live on the device; batches are drawn inside the compiled
training step (see :mod:`jaxticket.train`). The validation split is carved
from the training split with a fixed seed, so selection (best LR, best
checkpoint) never looks at the test set.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxticket.choices import check_choice
from jaxticket.data.augment import random_crop_flip

#: name -> (image key, normalization mean, std, scale applied first, augment).
#: Mean/std None = computed from the training split.
DATASETS: dict[str, dict] = {
    "mnist1d": dict(key="x", mean=None, std=None, scale=1.0, augment=False),
    "digits": dict(key="image", mean=None, std=None, scale=1 / 16,
                   augment=False),
    "mnist": dict(key="image", mean=(0.1307,), std=(0.3081,), scale=1 / 255,
                  augment=False),
    "fashion_mnist": dict(key="image", mean=(0.2860,), std=(0.3530,),
                          scale=1 / 255, augment=False),
    "cifar10": dict(key="image", mean=(0.4914, 0.4822, 0.4465),
                    std=(0.2470, 0.2435, 0.2616), scale=1 / 255, augment=True),
    "cifar100": dict(key="image", mean=(0.5071, 0.4865, 0.4409),
                     std=(0.2673, 0.2564, 0.2762), scale=1 / 255, augment=True),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Arrays of one dataset. ``x`` arrays keep their stored dtype (uint8 for
  images); :meth:`normalize` maps a batch to float32 inside the step."""
  name: str
  train_x: np.ndarray
  train_y: np.ndarray
  val_x: np.ndarray
  val_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  scale: float
  mean: np.ndarray
  std: np.ndarray
  augment: bool

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train_x.shape[1:])

  def normalize(self, x):
    """float32 ``(x * scale - mean) / std``; works on NumPy and JAX arrays."""
    return (x.astype(np.float32) * np.float32(self.scale) - self.mean) / self.std


def check_name(name: str) -> None:
  """Raise a ValueError naming the valid datasets if ``name`` is unknown."""
  check_choice("data.name", name, DATASETS, "dataset")


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR",
                        os.path.expanduser("~/tensorflow_datasets"))


def _read_split(name: str, split: str, data_dir: str | None):
  """All (x, y) of one split as NumPy arrays, through tfds data sources."""
  import tensorflow_datasets as tfds
  from jaxticket.data.builders import OFFLINE_BUILDERS
  tfds.disable_progress_bar()
  spec = DATASETS[name]
  if name in OFFLINE_BUILDERS:
    make = lambda: OFFLINE_BUILDERS[name](
        data_dir=data_dir or default_data_dir(), file_format="array_record")
    builder = make()
    try:
      builder.download_and_prepare()
    except FileExistsError:  # another process (host) prepared it meanwhile
      builder = make()
    source = builder.as_data_source()[split]
    num_classes = builder.info.features["label"].num_classes
  else:
    try:
      source = tfds.data_source(name, split=split, data_dir=data_dir)
    except OSError as e:  # includes requests' errors: offline, no access
      raise ValueError(
          f"data.name={name!r}: tfds could not download or read it "
          f"({type(e).__name__}); its first use downloads it (needs a "
          "network), or copy a prepared tfds directory into data.data_dir or "
          f"$TFDS_DATA_DIR; offline datasets: {', '.join(OFFLINE_BUILDERS)}."
          ) from None
    builder = tfds.builder(name, data_dir=data_dir)
    num_classes = builder.info.features["label"].num_classes
  items = [source[i] for i in range(len(source))]
  x = np.stack([np.asarray(it[spec["key"]]) for it in items])
  y = np.asarray([it["label"] for it in items], np.int32)
  return x, y, num_classes


def load(name: str, data_dir: str | None = None, val_fraction: float = 0.1,
         val_seed: int = 0, augment: bool | None = None) -> Dataset:
  """Load dataset ``name`` into memory with a validation split.

  Args:
    name: a key of :data:`DATASETS`.
    data_dir: tfds data directory (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); offline builders prepare themselves there.
    val_fraction: fraction of the training split held out for validation.
    val_seed: seed of the fixed permutation that carves the validation split.
    augment: crop+flip during training; None = the dataset's default.
  """
  check_name(name)
  if not 0 < val_fraction < 1:
    raise ValueError(f"data.val_fraction must be in (0, 1); got {val_fraction}.")
  spec = DATASETS[name]
  x, y, num_classes = _read_split(name, "train", data_dir)
  test_x, test_y, _ = _read_split(name, "test", data_dir)
  if x.ndim == 2:  # (N, L) -> (N, L, 1)
    x, test_x = x[..., None], test_x[..., None]
  order = np.random.default_rng(val_seed).permutation(len(y))
  n_val = max(1, int(round(val_fraction * len(y))))
  val_idx, train_idx = order[:n_val], np.sort(order[n_val:])
  train_x = x[train_idx]
  if spec["mean"] is None:
    flat = train_x.reshape(-1, train_x.shape[-1]).astype(np.float64)
    flat = flat * spec["scale"]
    mean, std = flat.mean(0), flat.std(0) + 1e-8
  else:
    mean, std = np.asarray(spec["mean"]), np.asarray(spec["std"])
  return Dataset(
      name=name, train_x=train_x, train_y=y[train_idx],
      val_x=x[val_idx], val_y=y[val_idx], test_x=test_x, test_y=test_y,
      num_classes=int(num_classes), scale=float(spec["scale"]),
      mean=mean.astype(np.float32), std=std.astype(np.float32),
      augment=spec["augment"] if augment is None else bool(augment))


__all__ = ["Dataset", "DATASETS", "load", "check_name", "random_crop_flip"]
