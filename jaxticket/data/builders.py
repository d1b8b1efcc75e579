"""Offline TFDS builders: MNIST-1D, scikit-learn's digits, local Fashion-MNIST,
espeak-ng prosody, and LSSED from a local copy.

MNIST-1D and digits generate their data locally; Fashion-MNIST is read from
IDX files in a local folder (``manual_dir``). No download, so the whole
library runs on a machine without network access, through the same
tensorflow-datasets path that serves mnist/cifar10/cifar100 elsewhere. They
write ArrayRecord files and are read with ``builder.as_data_source()``, which
needs no TensorFlow.
"""

from __future__ import annotations

import gzip
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from jaxticket.data import lssed


class Mnist1d(tfds.core.GeneratorBasedBuilder):
  """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of the ten digits.

  Generated with the ``mnist1d`` package's default arguments (seed 42):
  4000 training and 1000 test examples, the standard benchmark split.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "mnist1d default arguments, 4000/1000 split."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="MNIST-1D, generated locally by the mnist1d package.",
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(40, 1), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("x", "label"),
        homepage="https://github.com/greydanus/mnist1d",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    from mnist1d.data import get_dataset_args, make_dataset
    data = make_dataset(get_dataset_args())
    return {
        "train": self._generate_examples(data["x"], data["y"]),
        "test": self._generate_examples(data["x_test"], data["y_test"]),
    }

  def _generate_examples(self, xs, ys):
    for i, (x, y) in enumerate(zip(xs, ys)):
      yield i, {"x": np.asarray(x, np.float32)[:, None], "label": int(y)}


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set).

  1797 images with values 0..16; a fixed permutation (seed 0) puts 80% in
  ``train`` and 20% in ``test``.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "sklearn load_digits, 80/20 split, seed 0."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="8x8 digits bundled with scikit-learn.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    from sklearn.datasets import load_digits
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    n_train = int(round(0.8 * len(order)))
    images = bunch.images.astype(np.uint8)[..., None]
    return {
        "train": self._generate_examples(images, bunch.target, order[:n_train]),
        "test": self._generate_examples(images, bunch.target, order[n_train:]),
    }

  def _generate_examples(self, images, labels, idx):
    for i in idx:
      yield int(i), {"image": images[i], "label": int(labels[i])}


#: IDX file stems of the MNIST family per split: (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Class names of Fashion-MNIST, in label order (as tfds's fashion_mnist).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def idx_path(folder: str, stem: str) -> str | None:
  """The file ``stem`` or ``stem.gz`` in ``folder`` (gzipped first), or None."""
  for name in (stem + ".gz", stem):
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      return path
  return None


def missing_idx_files(folder: str) -> list[str]:
  """The IDX stems of :data:`IDX_FILES` that ``folder`` lacks (all if it
  is not a folder)."""
  stems = [s for pair in IDX_FILES.values() for s in pair]
  if not os.path.isdir(folder):
    return stems
  return [s for s in stems if idx_path(folder, s) is None]


def idx_digest(folder: str) -> str:
  """A short SHA-256 of the four IDX files' bytes: names the prepared copy,
  so different folder contents never share one."""
  h = hashlib.sha256()
  for stems in IDX_FILES.values():
    for stem in stems:
      with open(idx_path(folder, stem), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
  return h.hexdigest()[:16]


def read_idx(path: str) -> np.ndarray:
  """An IDX file (LeCun's MNIST format, optionally gzipped) as a uint8 array.

  Header: two zero bytes, the type code (0x08 = unsigned byte), the number of
  dimensions, then each dimension as a big-endian uint32; data follow.
  """
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
    raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
  ndim = raw[3]
  start = 4 + 4 * ndim
  shape = tuple(int(d) for d in np.frombuffer(raw[4:start], ">u4"))
  if len(raw) - start != int(np.prod(shape)):
    raise ValueError(f"{path}: header says shape {shape} but holds "
                     f"{len(raw) - start} bytes of data.")
  return np.frombuffer(raw, np.uint8, offset=start).reshape(shape)


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder,
                      skip_registration=True):
  """Fashion-MNIST (Xiao et al. 2017) from the four IDX files in a folder.

  The same examples, labels and example keys as tfds's ``fashion_mnist``
  (which downloads these files), for machines without a network; images are
  a uint8 Tensor feature rather than PNG-encoded, so reading decodes nothing.
  Not registered, so it never clashes with tfds's builder; prepared copies
  live under their own data dir (see :mod:`jaxticket.data`).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "IDX files from a local folder."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "A folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
      "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally "
      ".gz), e.g. /usr/share/datasets/fashion-mnist of Debian's "
      "dataset-fashion-mnist package.")

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Fashion-MNIST, read from local IDX files.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=FASHION_MNIST_CLASSES),
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    )

  def _split_generators(self, dl_manager):
    folder = os.fspath(dl_manager.manual_dir)
    return {split: self._generate_examples(folder, *stems)
            for split, stems in IDX_FILES.items()}

  def _generate_examples(self, folder: str, images_stem: str,
                         labels_stem: str):
    images = read_idx(idx_path(folder, images_stem))
    labels = read_idx(idx_path(folder, labels_stem))
    if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
      raise ValueError(f"{folder}: {images_stem} has shape {images.shape} and "
                       f"{labels_stem} {labels.shape}; expected (N, 28, 28) "
                       "and (N,).")
    # Keys are the file positions, as tfds's fashion_mnist uses.
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image[..., None], "label": int(label)}


class EspeakProsody(tfds.core.GeneratorBasedBuilder):
  """Synthetic speech (:mod:`jaxticket.data.speech`): 0.8 s clips at 16 kHz
  of one word said by espeak-ng in one of 8 prosody classes (voice x pitch
  x speed). Synthetic prosody, not emotion. ``TRAIN_PER_CLASS`` /
  ``TEST_PER_CLASS`` clips per class, seeds 0 and 1."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "8 classes, 40/15 clips per class."}
  TRAIN_PER_CLASS = 40
  TEST_PER_CLASS = 15
  SECONDS = 0.8

  def _info(self) -> tfds.core.DatasetInfo:
    from jaxticket.data import speech
    length = int(self.SECONDS * speech.SAMPLE_RATE)
    return self.dataset_info_from_configs(
        description="espeak-ng prosody classes (synthetic, not emotion).",
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(length, 1), dtype=np.float32),
            "label": tfds.features.ClassLabel(
                names=[speech.class_name(i)
                       for i in range(len(speech.CLASSES))]),
        }),
        supervised_keys=("x", "label"),
        homepage="https://github.com/espeak-ng/espeak-ng",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    from jaxticket.data import speech
    return {
        "train": self._generate_examples(*speech.generate(
            self.TRAIN_PER_CLASS, 0, self.SECONDS)),
        "test": self._generate_examples(*speech.generate(
            self.TEST_PER_CLASS, 1, self.SECONDS)),
    }

  def _generate_examples(self, xs, ys):
    for i, (x, y) in enumerate(zip(xs, ys)):
      yield i, {"x": np.asarray(x, np.float32)[:, None], "label": int(y)}


#: Offline builders by the name used in ``data.name``.
OFFLINE_BUILDERS = {"mnist1d": Mnist1d, "digits": Digits,
                    "espeak_prosody": EspeakProsody}


class Lssed(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """LSSED (Fan et al. 2021): its 4-class task from a local copy
  (``manual_dir``); the layouts read, the emotion mapping, the audio
  handling and the split are in :mod:`jaxticket.data.lssed`, which also
  says that the real on-disk layout could not be verified. Not registered
  (its options are constructor arguments); prepared copies live under
  their own data dir (see :mod:`jaxticket.data`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "csv or folder layout, 4 classes, 16 kHz int16."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "A local copy of LSSED (sent by its authors under an EULA, "
      f"{lssed.HOMEPAGE}): WAV files with a metadata CSV/TSV (path, emotion, "
      "speaker columns) or one folder per emotion.")

  def __init__(self, *, options: lssed.Options, **kwargs):
    self.options = options
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="LSSED speech emotion (4 classes), from a local copy.",
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(self.options.length, 1),
                                      dtype=np.int16),
            "label": tfds.features.ClassLabel(names=lssed.CLASSES),
            "speaker": tfds.features.Text(),
        }),
        supervised_keys=("x", "label"),
        homepage=lssed.HOMEPAGE,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    folder = os.fspath(dl_manager.manual_dir)
    m = lssed.scan(folder, self.options)
    train, test = lssed.split(m, self.options)
    self.info.metadata["layout"] = m.layout
    self.info.metadata["dropped"] = m.dropped
    self.info.metadata["summary"] = m.summary()
    return {"train": self._generate_examples(folder, m, train),
            "test": self._generate_examples(folder, m, test)}

  def _generate_examples(self, folder: str, m: lssed.Manifest, idx):
    for i in idx:
      yield int(i), {"x": lssed.clip(folder, m.paths[i], self.options.length),
                     "label": int(m.labels[i]),
                     "speaker": m.speakers[i] if m.speakers else ""}
