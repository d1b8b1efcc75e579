import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxticket import data


def test_mnist1d_offline_builder(mnist1d):
  d = mnist1d
  assert d.train_x.shape == (3600, 40, 1) and d.val_x.shape == (400, 40, 1)
  assert d.test_x.shape == (1000, 40, 1) and d.train_x.dtype == np.float32
  assert d.num_classes == 10
  for y in (d.train_y, d.val_y, d.test_y):
    assert y.min() == 0 and y.max() == 9
  # Normalization statistics come from the training split.
  z = d.normalize(d.train_x)
  assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-3


def test_digits_offline_builder():
  d = data.load("digits", val_fraction=0.1)
  assert d.train_x.shape[1:] == (8, 8, 1) and d.train_x.dtype == np.uint8
  assert len(d.train_y) + len(d.val_y) + len(d.test_y) == 1797
  assert d.train_x.max() <= 16 and set(np.unique(d.train_y)) == set(range(10))


def test_validation_split_is_disjoint_and_fixed(mnist1d):
  again = data.load("mnist1d")
  np.testing.assert_array_equal(again.val_x, mnist1d.val_x)
  train_rows = {r.tobytes() for r in mnist1d.train_x}
  assert not any(r.tobytes() in train_rows for r in mnist1d.val_x)


@pytest.mark.parametrize("name,shape", [("cifar10", (32, 32, 3)),
                                        ("mnist", (28, 28, 1))])
def test_tfds_datasets_under_mock_data(name, shape):
  with tfds.testing.mock_data(num_examples=20):
    d = data.load(name)
  assert d.train_x.shape[1:] == shape and d.num_classes == 10
  assert d.augment == (name == "cifar10")
  assert d.normalize(d.train_x[:2]).dtype == np.float32


def test_unknown_dataset():
  with pytest.raises(ValueError, match="Did you mean 'cifar10'"):
    data.load("cifar11")


def test_random_crop_flip():
  x = np.arange(2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1) + 1
  a = data.random_crop_flip(jax.random.key(0), x, pad=2)
  b = data.random_crop_flip(jax.random.key(0), x, pad=2)
  assert a.shape == x.shape
  np.testing.assert_array_equal(a, b)
  # Every output pixel is either padding (0) or a pixel of the same image.
  for i in range(2):
    vals = set(np.asarray(a[i]).ravel()) - {0.0}
    assert vals <= set(x[i].ravel())
  outs = [np.asarray(data.random_crop_flip(jax.random.key(k), x, pad=2))
          for k in range(5)]
  assert any((o != x).any() for o in outs)


def test_download_failure_is_one_clear_error(monkeypatch):
  import requests

  def offline(*args, **kwargs):
    raise requests.ConnectionError("Failed to resolve 'storage.googleapis.com'")

  monkeypatch.setattr(tfds, "data_source", offline)
  with pytest.raises(ValueError, match="data.name='mnist'.*needs a network"
                     ".*offline datasets: mnist1d, digits"):
    data.load("mnist")
