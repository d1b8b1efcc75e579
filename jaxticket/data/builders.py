"""Offline TFDS builders: MNIST-1D and scikit-learn's digits.

Both generate their data locally (no download), so the whole library runs on
a machine without network access, through the same tensorflow-datasets path
that serves mnist/cifar10/cifar100 elsewhere. They write ArrayRecord files and
are read with ``builder.as_data_source()``, which needs no TensorFlow.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds


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


#: Offline builders by the name used in ``data.name``.
OFFLINE_BUILDERS = {"mnist1d": Mnist1d, "digits": Digits}
