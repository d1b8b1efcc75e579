"""Fashion-MNIST from local IDX files: a generated fixture, never the real
files (Debian's folder is pointed away) and never a download."""

import gzip
import os
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxticket import cli
from jaxticket import data
from jaxticket.data import builders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_idx(path: str, array: np.ndarray, compress: bool) -> None:
  """``array`` (uint8) in IDX format: 0, 0, type 0x08, ndim, dims, data."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
      f">{array.ndim}I", *array.shape)
  with (gzip.open if compress else open)(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def make_fixture(folder, seed: int = 0, n_train: int = 40, n_test: int = 20,
                 compress: bool = True) -> dict:
  """Random images/labels written as the four IDX files; returns them."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  arrays = {}
  for split, n in (("train", n_train), ("test", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    rng.shuffle(labels)
    images_stem, labels_stem = builders.IDX_FILES[split]
    suffix = ".gz" if compress else ""
    write_idx(os.path.join(folder, images_stem + suffix), images, compress)
    write_idx(os.path.join(folder, labels_stem + suffix), labels, compress)
    arrays[split] = (images, labels)
  return arrays


@pytest.fixture(autouse=True)
def no_real_data_no_network(monkeypatch, tmp_path):
  """Hide Debian's files and forbid tfds's download in every test here."""
  monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "no_deb"))
  monkeypatch.setattr(data, "_reachable", lambda url, timeout=5.0: False)

  def no_download(*args, **kwargs):
    raise AssertionError("tests must not download")
  monkeypatch.setattr(tfds, "data_source", no_download)


def as_rows(x: np.ndarray, y: np.ndarray) -> dict:
  return {img.reshape(28, 28).tobytes(): int(label) for img, label in zip(x, y)}


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_builder_reads_local_idx_files(tmp_path, compress):
  arrays = make_fixture(tmp_path / "idx", compress=compress)
  d = data.load("fashion_mnist", val_fraction=0.25,
                local_dir=str(tmp_path / "idx"))
  assert d.train_x.shape == (30, 28, 28, 1) and d.val_x.shape == (10, 28, 28, 1)
  assert d.test_x.shape == (20, 28, 28, 1) and d.train_x.dtype == np.uint8
  assert d.train_y.dtype == np.int32 and d.num_classes == 10
  # Exactly the fixture's pixels and labels (tfds stores in its own order).
  train = {**as_rows(d.train_x, d.train_y), **as_rows(d.val_x, d.val_y)}
  assert train == as_rows(*arrays["train"])
  assert as_rows(d.test_x, d.test_y) == as_rows(*arrays["test"])
  assert d.normalize(d.test_x[:2]).dtype == np.float32


def test_prepared_once_and_keyed_by_content(tmp_path, monkeypatch):
  make_fixture(tmp_path / "a", seed=1)
  first = data.load("fashion_mnist", local_dir=str(tmp_path / "a"))

  def no_prepare(*args, **kwargs):
    raise AssertionError("prepared twice")
  with monkeypatch.context() as m:
    m.setattr(builders.FashionMnistIdx, "_generate_examples", no_prepare)
    again = data.load("fashion_mnist", local_dir=str(tmp_path / "a"))
  np.testing.assert_array_equal(again.test_x, first.test_x)
  # Other files, even under the same folder name, get their own prepared copy.
  make_fixture(tmp_path / "a", seed=2)
  other = data.load("fashion_mnist", local_dir=str(tmp_path / "a"))
  assert (other.test_x != first.test_x).any()


def test_debian_folder_is_used_without_data_dir(tmp_path, monkeypatch):
  arrays = make_fixture(tmp_path / "deb", seed=3)
  monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "deb"))
  d = data.load("fashion_mnist")
  assert as_rows(d.test_x, d.test_y) == as_rows(*arrays["test"])


def assert_one_line_with_fixes(message: str) -> None:
  assert "\n" not in message
  for needle in ("data.name=fashion_mnist", "--config.data.dir",
                 "apt-get install dataset-fashion-mnist", "network"):
    assert needle in message, needle


def test_missing_folder_and_missing_files(tmp_path):
  with pytest.raises(data.DataUnavailableError) as e:
    data.load("fashion_mnist", local_dir=str(tmp_path / "nonexistent"))
  assert "is not a folder" in str(e.value)
  assert_one_line_with_fixes(str(e.value))
  make_fixture(tmp_path / "idx")
  os.remove(tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(data.DataUnavailableError, match="lacks t10k-labels"):
    data.load("fashion_mnist", local_dir=str(tmp_path / "idx"))


def test_no_local_files_and_no_network(tmp_path):
  with pytest.raises(data.DataUnavailableError) as e:
    data.load("fashion_mnist", data_dir=str(tmp_path / "tfds"))
  assert "unreachable" in str(e.value)
  assert_one_line_with_fixes(str(e.value))


def test_failed_download_becomes_one_line(tmp_path, monkeypatch):
  monkeypatch.setattr(data, "_reachable", lambda url, timeout=5.0: True)

  def failing_download(*args, **kwargs):
    raise ConnectionError("Max retries exceeded\nwith url: /t10k-images")
  monkeypatch.setattr(tfds, "data_source", failing_download)
  with pytest.raises(data.DataUnavailableError) as e:
    data.load("fashion_mnist", data_dir=str(tmp_path / "tfds"))
  assert "download failed (ConnectionError: Max retries exceeded)" in str(
      e.value)
  assert_one_line_with_fixes(str(e.value))


def test_cli_prints_one_line_error(tmp_path, capsys):
  code = cli.main(["train", "--config.data.name=fashion_mnist",
                   "--config.data.dir", str(tmp_path / "nonexistent"),
                   "--workdir", str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert code == 2 and "Traceback" not in err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("jaxticket train: error: ")
  assert_one_line_with_fixes(lines[0])


def test_shipped_config_tiny_on_fixture(tmp_path, capsys):
  make_fixture(tmp_path / "idx", n_train=60)
  config = os.path.join(ROOT, "configs", "fashion_mnist_lenet.py") + ":tiny"
  code = cli.main(["train", "--config", config, "--config.data.dir",
                   str(tmp_path / "idx"), "--workdir", str(tmp_path / "w"),
                   "--no-progress"])
  assert code == 0, capsys.readouterr().err
  assert (tmp_path / "w" / "summary.json").exists()
