"""Offline text (issue 17): tokenizer round trip, readers and TFDS builders
on small generated fixtures in each source's own file format (never the
installed files)."""

import bz2
import csv
import io
import os
import struct
import zlib

import numpy as np
import pytest

from jaxticket.core.checks import ConfigError
from jaxticket.data import text as text_lib
from jaxticket.data import text_builders
from jaxticket.data import text_datasets
from jaxticket.data.tokenizer import ByteTokenizer, CLS, PAD, SEP


def test_byte_tokenizer_round_trips_text():
  tok = ByteTokenizer()
  for s in ["In the beginning God created the heaven and the earth.",
            "Émma Woodhouse, handsome — clever, and rich ✓", "", "a\n%\nb"]:
    ids = tok.encode(s)
    assert ids.dtype == np.int32 and (ids >= 4).all() and (ids < 260).all()
    assert tok.decode(ids) == s
    fixed = tok.encode_fixed(s, 80)
    assert fixed[0] == CLS and fixed.shape == (80,)
    assert tok.decode(fixed) == s  # all shorter than 78 bytes
  assert tok.decode(tok.encode_fixed("x" * 100, 10)) == "x" * 8  # truncated
  text = ("abcdefghij" * 3)[:28]
  x = tok.chunks(text, 8)  # 6 bytes per window: 4 full, one of 4 bytes
  assert x.shape == (5, 8) and (x[:, 0] == CLS).all()
  assert "".join(tok.decode(r) for r in x) == text
  assert x[-1, -1] == PAD and SEP in x[-1]


def _r_vector(lines):
  """An R XDR serialization (version 3) of a character vector."""
  out = [b"X\n", struct.pack(">iii", 3, 0x40201, 0x30500),
         struct.pack(">i", 5), b"UTF-8", struct.pack(">ii", 16, len(lines))]
  for s in lines:
    b = s.encode()
    out += [struct.pack(">ii", 0x40009, len(b)), b]
  return b"".join(out)


def write_fixtures(root):
  """Fixture folders of all four sources; returns {source: folder}."""
  dirs = {s: os.path.join(root, s) for s in text_builders.TEXT_BUILDERS}
  for d in dirs.values():
    os.makedirs(d)
  with open(os.path.join(dirs["kjv"], "kjv.txt"), "w") as f:
    for i in range(30):
      f.write(f"Ge1:{i + 1} Verse number {i} of the fixture.\n")
  chunks = []
  for title in ("EMMA", "PERSUASION"):
    lines = [title, ""] + [f"{title.lower()} line {i}" for i in range(40)]
    blob = zlib.compress(_r_vector(lines))
    chunks.append(struct.pack(">i", len(_r_vector(lines))) + blob)
  with open(os.path.join(dirs["austen"], "Rdata.rdb"), "wb") as f:
    f.write(b"".join(chunks))
  for cat in ("art", "zippy"):
    with open(os.path.join(dirs["fortunes"], cat), "w") as f:
      f.write("\n%\n".join(f"{cat} fortune {i}" for i in range(10)) + "\n%\n")
    with open(os.path.join(dirs["fortunes"], cat + ".dat"), "wb") as f:
      f.write(b"\0" * 8)
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
  for i in range(20):
    w.writerow(["fresh" if i % 2 else "rotten", f"snippet {i}", "m", "True"])
  w.writerow(["plot", "a plot, skipped", "m", "True"])
  with open(os.path.join(dirs["rotten_tomatoes"], text_lib.RT_FILE),
            "wb") as f:
    f.write(bz2.compress(buf.getvalue().encode()))
  return dirs


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
  return write_fixtures(str(tmp_path_factory.mktemp("text")))


def test_readers_parse_the_package_formats(fixtures):
  assert text_lib.read_kjv(fixtures["kjv"])[3] == "Verse number 3 of the fixture."
  novels = text_lib.read_austen(fixtures["austen"])
  assert sorted(novels) == ["Emma", "Persuasion"]
  assert novels["Emma"][2] == "emma line 0" and len(novels["Emma"]) == 42
  assert len(text_lib.austen_passages(novels["Emma"])) == 5  # 41 lines / 10
  fortunes = text_lib.read_fortunes(fixtures["fortunes"])
  assert sorted(fortunes) == ["art", "zippy"]  # the .dat index skipped
  assert fortunes["zippy"][-1] == "zippy fortune 9" and len(fortunes["art"]) == 10
  rt = text_lib.read_rotten_tomatoes(fixtures["rotten_tomatoes"])
  assert len(rt) == 20 and rt[1] == ("snippet 1", 1) and rt[0][1] == 0


@pytest.mark.parametrize("source,n,labels", [
    ("kjv", 30, {0}), ("austen", 10, {0, 3}), ("fortunes", 20, {0, 42}),
    ("rotten_tomatoes", 20, {0, 1})])
def test_builders_from_manual_dir(fixtures, tmp_path, source, n, labels):
  builder = text_builders.prepared(source, fixtures[source], str(tmp_path))
  train, y_train = text_builders.read_split(builder, "train")
  test, y_test = text_builders.read_split(builder, "test")
  assert len(train) + len(test) == n
  assert len(test) == round(text_builders.TEST_FRACTION * n)
  assert set(y_train) | set(y_test) == labels
  assert builder.info.features["label"].num_classes == len(
      text_builders.TEXT_BUILDERS[source].LABELS)


def test_text_dataset_shapes_for_both_tasks(fixtures, tmp_path):
  d = text_datasets.load_text("rotten_tomatoes", seq_len=16,
                              data_dir=str(tmp_path),
                              local_dir=fixtures["rotten_tomatoes"])
  assert d.train_x.shape == (14, 16) and d.val_x.shape == (2, 16)
  assert d.test_x.shape == (4, 16) and d.num_classes == 2
  assert d.train_x.dtype == np.int32 and (d.train_x[:, 0] == CLS).all()
  assert d.input_shape == (16,) and d.vocab_size == 260
  m = text_datasets.load_text("kjv", seq_len=32, task="mlm",
                              data_dir=str(tmp_path),
                              local_dir=fixtures["kjv"], max_train=5)
  assert m.task == "mlm" and m.train_x.shape == (5, 32)
  assert m.num_classes == 260


def test_missing_or_wrong_folder_is_one_line(fixtures, tmp_path):
  with pytest.raises(ConfigError, match="data.dir=.*cannot be read"):
    text_datasets.load_text("austen", data_dir=str(tmp_path),
                            local_dir=fixtures["kjv"])
  with pytest.raises(ConfigError, match="data.name"):
    text_datasets.load_text("imdb", data_dir=str(tmp_path))
