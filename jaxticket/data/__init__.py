"""Datasets as in-memory arrays, loaded through tensorflow-datasets.

``load(name)`` returns a :class:`Dataset` with train/validation/test arrays.
Small datasets live on the device; batches are drawn inside the compiled
training step (see :mod:`jaxticket.core.step`). The validation split is carved
from the training split with a fixed seed, so selection (best LR, best
checkpoint) never looks at the test set.

Fashion-MNIST works offline too: it is read from local IDX files when there
are any (``data.dir``, else Debian's ``dataset-fashion-mnist``) and downloaded
by tfds's own ``fashion_mnist`` builder otherwise; see :func:`load`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import urllib.parse
import urllib.request

import numpy as np

from jaxticket.core.checks import check_choice
from jaxticket.core.augment import random_crop_flip
from jaxticket.data.paths import default_data_dir

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
    # 16 kHz waveforms [T, 1] (issue 20; data/speech.py): synthetic prosody
    "espeak_prosody": dict(key="x", mean=None, std=None, scale=1.0,
                           augment=False),
    # LSSED speech emotion from a local copy (data.dir; data/lssed.py):
    # int16 16 kHz waveforms [T, 1], 4 classes
    "lssed": dict(key="x", mean=None, std=None, scale=1 / 32768,
                  augment=False),
}
#: Graph node-classification sets ``load`` serves (issue 20: the benchmark
#: ranks the weight methods on a GCN too): every offline graph of
#: :data:`jaxticket.data.graphs.GRAPHS` (the Planetoid ones need a local
#: folder and are left to ``jaxticket graph``). Examples are node indices.
GRAPH_DATASETS = ("karate", "sbm_homophilous", "sbm_heterophilous",
                  "drosophila_left", "drosophila_right")
DATASETS.update({name: dict(key=None, mean=None, std=None, scale=1.0,
                            augment=False, graph=True)
                 for name in GRAPH_DATASETS})
#: Text classification sets ``load`` serves (issue 20: the benchmark ranks
#: the weight methods on a transformer too), the offline corpora of
#: :mod:`jaxticket.data.text_builders`: examples are byte-token ids
#: ([CLS] bytes [SEP], padded to ``seq_len``), labels: rotten_tomatoes
#: fresh/rotten, fortunes its category, austen the novel, kjv the testament.
TEXT_DATASETS = ("rotten_tomatoes", "fortunes", "austen", "kjv")
DATASETS.update({name: dict(key=None, mean=None, std=None, scale=1.0,
                            augment=False, text=True)
                 for name in TEXT_DATASETS})


def is_graph(name: str) -> bool:
  """Whether dataset ``name`` is a graph node-classification set."""
  return bool(DATASETS.get(name, {}).get("graph"))


def is_text(name: str) -> bool:
  """Whether dataset ``name`` is a text (token id) classification set."""
  return bool(DATASETS.get(name, {}).get("text"))


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
  task: str = "classification"  # a name in jaxticket.tasks.TASKS
  #: Arrays every forward pass reads whole (a graph's ``features``,
  #: ``senders``, ``receivers``; :class:`jaxticket.core.step.DataArrays`);
  #: None for datasets whose examples carry all their inputs.
  context: dict | None = None
  #: Token vocabulary of a text set (its ``x`` are int token ids, which
  #: :meth:`normalize` keeps); 0 for every other dataset.
  vocab_size: int = 0

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train_x.shape[1:])

  def normalize(self, x):
    """float32 ``(x * scale - mean) / std``; works on NumPy and JAX arrays.
    Node indices (a graph set) pass unchanged: the model reads the
    features from the context; token ids (a text set) stay int32 ids."""
    if self.context is not None:
      return x
    if self.vocab_size:
      return x.astype(np.int32)
    return (x.astype(np.float32) * np.float32(self.scale) - self.mean) / self.std


def check_name(name: str) -> None:
  """Raise a ValueError naming the valid datasets if ``name`` is unknown."""
  check_choice("data.name", name, DATASETS, "dataset")


#: Datasets that ``data.dir`` (a folder of the raw files) can serve.
LOCAL_DIR_DATASETS = ("fashion_mnist", "lssed")
#: ... and every dataset that reads ``data.dir`` (the text sets: a folder
#: in their source's layout, :mod:`jaxticket.data.text`).
DIR_DATASETS = LOCAL_DIR_DATASETS + TEXT_DATASETS

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


class DataUnavailableError(ValueError):
  """A dataset is neither in a local folder nor downloadable (one line)."""




def _prepared(make, download_config=None):
  """``make()``'s builder after ``download_and_prepare`` (once per data dir;
  later calls only read)."""
  builder = make()
  try:
    builder.download_and_prepare(download_config=download_config)
  except FileExistsError:  # another process (host) prepared it meanwhile
    builder = make()
  return builder


def _fashion_mnist_unavailable(reason: str) -> DataUnavailableError:
  return DataUnavailableError(
      f"Fashion-MNIST (data.name=fashion_mnist) is not available: {reason}. "
      "Fix: point --config.data.dir at a folder holding the four IDX files "
      "(train-images-idx3-ubyte, train-labels-idx1-ubyte, "
      "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz), "
      "or `apt-get install dataset-fashion-mnist` (installs them in "
      f"{DEBIAN_FASHION_MNIST}), or run on a machine with a network "
      "(tensorflow-datasets downloads them).")


def _local_fashion_mnist(data_dir: str, local_dir: str | None):
  """The prepared local-IDX builder: from ``local_dir`` if given (an error if
  it lacks files: a mistyped path must not fall back silently), else from
  Debian's folder if installed; None when neither applies."""
  from jaxticket.data.builders import FashionMnistIdx, idx_digest
  from jaxticket.data.builders import missing_idx_files
  import tensorflow_datasets as tfds
  if local_dir:
    missing = missing_idx_files(local_dir)
    if missing:
      what = ("is not a folder" if not os.path.isdir(local_dir) else
              f"lacks {', '.join(missing)} (.gz or not)")
      raise _fashion_mnist_unavailable(f"data.dir={local_dir!r} {what}")
    folder = local_dir
  elif not missing_idx_files(DEBIAN_FASHION_MNIST):
    folder = DEBIAN_FASHION_MNIST
  else:
    return None
  # Prepared copies are keyed by the files' content, under their own data dir
  # (never tfds's downloaded ``fashion_mnist/``), so sources never mix.
  root = os.path.join(data_dir, "local", f"fashion_mnist-{idx_digest(folder)}")
  return _prepared(
      lambda: FashionMnistIdx(data_dir=root, file_format="array_record"),
      tfds.download.DownloadConfig(manual_dir=os.path.abspath(folder)))


def _local_lssed(data_dir: str, local_dir: str | None, options):
  """The prepared LSSED builder of the copy in ``local_dir`` (a one-line
  error if there is none), keyed by the copy's listing and the options."""
  from jaxticket.data import lssed
  from jaxticket.data.builders import Lssed
  import tensorflow_datasets as tfds
  folder = local_dir or ""
  lssed.check_folder(folder)
  o = lssed.Options.from_config(options or {})
  lssed.check_options(o)
  m = lssed.scan(folder, o)
  root = os.path.join(data_dir, "local", f"lssed-{lssed.digest(folder, o, m)}")
  return _prepared(
      lambda: Lssed(options=o, data_dir=root,
                          file_format="array_record"),
      tfds.download.DownloadConfig(manual_dir=os.path.abspath(folder)))


def _reachable(url: str | None, timeout: float = 5.0) -> bool:
  """Whether a TCP connection to ``url``'s host opens (True behind a proxy,
  which a direct probe cannot judge). Spares offline machines tfds's minutes
  of download retries."""
  if not url or urllib.request.getproxies():
    return True
  parts = urllib.parse.urlsplit(url)
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    with socket.create_connection((parts.hostname, port), timeout=timeout):
      return True
  except OSError:
    return False


def _downloaded(name: str, split: str, data_dir: str | None):
  """tfds's own builder (downloads on first use). For Fashion-MNIST a failed
  or impossible download becomes one :class:`DataUnavailableError`."""
  import tensorflow_datasets as tfds
  if name not in LOCAL_DIR_DATASETS:
    try:
      source = tfds.data_source(name, split=split, data_dir=data_dir)
    except OSError as e:  # includes requests' errors: offline, no access
      raise ValueError(
          f"data.name={name!r}: tfds could not download or read it "
          f"({type(e).__name__}); its first use downloads it (needs a "
          "network), or copy a prepared tfds directory into data.data_dir or "
          "$TFDS_DATA_DIR; offline datasets: mnist1d, digits, and "
          "fashion_mnist from local IDX files (data.dir).") from None
    return source, tfds.builder(name, data_dir=data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  # (is_prepared() would log a warning for the absent folder.)
  if not (builder.data_path / "dataset_info.json").exists():
    url = getattr(tfds.builder_cls(name), "URL", None)
    if not _reachable(url):
      raise _fashion_mnist_unavailable(
          f"no data.dir given, {DEBIAN_FASHION_MNIST} does not hold the IDX "
          f"files, and the download host {urllib.parse.urlsplit(url).hostname}"
          " is unreachable")
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir), builder
  except Exception as e:  # any download/prepare failure: requests, checksums
    detail = (str(e).splitlines() or [""])[0][:200]
    raise _fashion_mnist_unavailable(
        f"no data.dir given, {DEBIAN_FASHION_MNIST} does not hold the IDX "
        f"files, and the download failed ({type(e).__name__}: {detail})"
    ) from e


def _read_split(name: str, split: str, data_dir: str | None,
                local_dir: str | None = None, options=None):
  """All (x, y) of one split as NumPy arrays, through tfds data sources."""
  import tensorflow_datasets as tfds
  from jaxticket.data.builders import OFFLINE_BUILDERS
  tfds.disable_progress_bar()
  spec = DATASETS[name]
  builder = None
  if name in OFFLINE_BUILDERS:
    builder = _prepared(lambda: OFFLINE_BUILDERS[name](
        data_dir=data_dir or default_data_dir(), file_format="array_record"))
  elif name == "lssed":
    builder = _local_lssed(data_dir or default_data_dir(), local_dir, options)
    if split == "train":  # what was kept and dropped, on every load
      print(builder.info.metadata.get("summary", ""), file=sys.stderr)
  elif name in LOCAL_DIR_DATASETS:
    builder = _local_fashion_mnist(data_dir or default_data_dir(), local_dir)
  if builder is not None:
    source = builder.as_data_source()[split]
  else:
    source, builder = _downloaded(name, split, data_dir)
  num_classes = builder.info.features["label"].num_classes
  try:  # one batched read: 3-4x faster than item by item on 60000 examples
    items = source.__getitems__(range(len(source)))
  except (AttributeError, TypeError):  # e.g. tfds.testing.mock_data's sources
    items = [source[i] for i in range(len(source))]
  x = np.stack([np.asarray(it[spec["key"]]) for it in items])
  y = np.asarray([it["label"] for it in items], np.int32)
  return x, y, num_classes


def load(name: str, data_dir: str | None = None, val_fraction: float = 0.1,
         val_seed: int = 0, augment: bool | None = None,
         local_dir: str | None = None, options=None) -> Dataset:
  """Load dataset ``name`` into memory with a validation split.

  Fashion-MNIST comes from, in order: ``local_dir``; Debian's
  :data:`DEBIAN_FASHION_MNIST`; tfds's download. The first two are prepared
  once by :class:`~jaxticket.data.builders.FashionMnistIdx`; nothing usable
  raises one :class:`DataUnavailableError` that says how to fix it.

  Args:
    name: a key of :data:`DATASETS`.
    data_dir: tfds data directory (default ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); offline builders prepare themselves there.
    val_fraction: fraction of the training split held out for validation.
    val_seed: seed of the fixed permutation that carves the validation split.
    augment: crop+flip during training; None = the dataset's default.
    local_dir: a folder of the raw files (``data.dir``), for the names in
      :data:`LOCAL_DIR_DATASETS`; LSSED's local copy for ``lssed``.
    options: for ``lssed``, the ``data.lssed`` section (a mapping; see
      :mod:`jaxticket.data.lssed`); None = its defaults. For a graph set
      (:data:`GRAPH_DATASETS`), :func:`graph_options` of the ``graph``
      section: its ``train_fraction``/``val_fraction`` split the nodes
      (``val_fraction`` above is not read) with seed ``val_seed``. For a
      text set (:data:`TEXT_DATASETS`), :func:`text_options` of the
      ``data.text`` section (``seq_len``, ``max_train``, ``max_eval``).
  """
  check_name(name)
  if is_graph(name):
    return _graph_dataset(name, val_seed, options)
  if is_text(name):
    return _text_dataset(name, data_dir, val_fraction, val_seed, local_dir,
                         options)
  if not 0 < val_fraction < 1:
    raise ValueError(f"data.val_fraction must be in (0, 1); got {val_fraction}.")
  if local_dir and name not in LOCAL_DIR_DATASETS:
    raise ValueError(f"data.dir is only read for data.name in "
                     f"{', '.join(LOCAL_DIR_DATASETS)}; got {name!r}.")
  spec = DATASETS[name]
  x, y, num_classes = _read_split(name, "train", data_dir, local_dir, options)
  test_x, test_y, _ = _read_split(name, "test", data_dir, local_dir, options)
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


def graph_options(section) -> dict:
  """The ``graph`` config section's data keys as :func:`load`'s
  ``options`` for a graph set: the node split fractions and the graphs'
  sources (SBM knobs, connectome folder)."""
  g = section
  return {"train_fraction": float(g.train_fraction),
          "val_fraction": float(g.val_fraction),
          "drosophila_dir": g.drosophila_dir, "sbm_nodes": int(g.sbm.nodes),
          "sbm_classes": int(g.sbm.classes),
          "sbm_degree": float(g.sbm.degree),
          "sbm_homophily": (float(g.sbm.homophilous),
                            float(g.sbm.heterophilous)),
          "sbm_feature_dim": int(g.sbm.feature_dim),
          "sbm_feature_signal": float(g.sbm.feature_signal),
          "seed": int(g.sbm.seed)}


def _graph_dataset(name: str, split: int, options=None) -> Dataset:
  """Graph ``name`` as a :class:`Dataset`: x = node indices (int32, shape
  (n,)), y = their labels, the graph in ``context`` (one random stratified
  node split, seed ``split``: the same nodes as split ``split`` of
  ``jaxticket graph``, :func:`jaxticket.data.graphs.node_dataset`)."""
  from jaxticket.data import graphs
  o = dict(options or {})
  train_fraction = float(o.pop("train_fraction", 0.2))
  val_fraction = float(o.pop("val_fraction", 0.2))
  o.pop("planetoid_dir", None)
  graph = graphs.load_graph(name, graphs.Sources(**o))
  nd = graphs.node_dataset(graph, split, train_fraction, val_fraction)
  one = np.ones((1,), np.float32)
  return Dataset(
      name=name, train_x=nd.train_x, train_y=nd.train_y, val_x=nd.val_x,
      val_y=nd.val_y, test_x=nd.test_x, test_y=nd.test_y,
      num_classes=graph.num_classes, scale=1.0, mean=0 * one, std=one,
      augment=False, context=nd.context)


def text_options(section) -> dict:
  """The ``data.text`` config section as :func:`load`'s ``options`` for a
  text set."""
  return {"seq_len": int(section.seq_len),
          "max_train": int(section.max_train),
          "max_eval": int(section.max_eval)}


def _text_dataset(name: str, data_dir: str | None, val_fraction: float,
                  val_seed: int, local_dir: str | None, options=None
                  ) -> Dataset:
  """Text set ``name`` as a :class:`Dataset`: x = byte-token ids (int32,
  shape (N, seq_len)), y = labels, ``vocab_size`` the tokenizer's (260).
  Read by :func:`jaxticket.data.text_datasets.load_text` from ``local_dir``
  or the installed package (missing: its one-line ConfigError naming the
  package and ``data.dir``). Byte tokens only: a benchmark compares methods
  on fixed inputs, and a BPE vocabulary would be one more tuned choice."""
  from jaxticket.data import text_datasets
  o = dict(options or {})
  t = text_datasets.load_text(
      name, int(o.get("seq_len", 64)), "classification", data_dir, local_dir,
      val_fraction, val_seed, "bytes", int(o.get("max_train", 0)),
      int(o.get("max_eval", 0)), dir_key="data.dir",
      tokenizer_key="data.text")
  zero, one = np.zeros((1,), np.float32), np.ones((1,), np.float32)
  return Dataset(
      name=name, train_x=t.train_x, train_y=t.train_y, val_x=t.val_x,
      val_y=t.val_y, test_x=t.test_x, test_y=t.test_y,
      num_classes=int(t.num_classes), scale=1.0, mean=zero, std=one,
      augment=False, vocab_size=int(t.vocab_size))


__all__ = ["Dataset", "DATASETS", "GRAPH_DATASETS", "TEXT_DATASETS",
           "DIR_DATASETS", "default_data_dir", "is_graph", "is_text", "text_options",
           "graph_options", "DataUnavailableError", "load", "check_name",
           "random_crop_flip"]
