"""LSSED from a local copy (data/lssed.py, builders.Lssed) on generated
fixtures in both layouts it reads: a metadata CSV/TSV and one folder per
emotion. The real layout is unpublished (see the module docstring)."""

import csv
import pathlib
import wave

import numpy as np
import pytest

from jaxticket import config
from jaxticket import data as data_lib
from jaxticket.core.checks import ConfigError
from jaxticket.data import lssed

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: A tone per emotion (so a tiny net can tell them apart) and two to drop.
TONES = {"angry": 300.0, "neutral": 500.0, "happy": 700.0, "sad": 900.0,
         "fear": 1100.0, "surprise": 1300.0}


def write_wav(path, x, rate, channels=1):
  """16-bit PCM; ``x`` [T] in [-1, 1] is repeated over ``channels``."""
  path.parent.mkdir(parents=True, exist_ok=True)
  pcm = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
  with wave.open(str(path), "wb") as w:
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(np.repeat(pcm, channels).tobytes())


def tone(freq, seconds, rate):
  t = np.arange(int(seconds * rate)) / rate
  return 0.5 * np.sin(2 * np.pi * freq * t)


def utterances(speakers=6, per=(2, 2, 2, 2, 1, 1)):
  """(emotion, speaker, index) rows: per speaker ``per`` of each emotion in
  :data:`TONES` order."""
  rows = []
  for s in range(speakers):
    for emotion, n in zip(TONES, per):
      rows += [(emotion, f"spk{s:02d}", i) for i in range(n)]
  return rows


def clip_of(k, emotion):
  """Varied rates, lengths and channel counts, deterministic in ``k``."""
  rate = (16000, 22050, 8000)[k % 3]
  return tone(TONES[emotion], (0.6, 1.3)[k % 2], rate), rate, 1 + k % 2


def make_csv_copy(root, name="metadata.csv", delimiter=",",
                  columns=("path", "emotion", "speaker")):
  """A copy in the CSV layout: wav/<speaker>/<n>.wav and one metadata
  file (emotions in mixed case, as a hand-made file may be)."""
  rows = utterances()
  with open(root / name, "w", newline="") as f:
    w = csv.writer(f, delimiter=delimiter)
    w.writerow(columns)
    for k, (emotion, speaker, i) in enumerate(rows):
      rel = f"wav/{speaker}/{k:03d}.wav"
      x, rate, ch = clip_of(k, emotion)
      write_wav(root / rel, x, rate, ch)
      w.writerow((rel, emotion.capitalize() if k % 2 else emotion, speaker))
  return rows


def make_folder_copy(root):
  """A copy in the folder layout: <emotion>/<n>.wav (+ a nested folder)."""
  rows = utterances(speakers=3)
  for k, (emotion, speaker, i) in enumerate(rows):
    x, rate, ch = clip_of(k, emotion)
    sub = f"{speaker}/" if k % 3 == 0 else ""
    write_wav(root / emotion.upper() / f"{sub}{k:03d}.wav", x, rate, ch)
  (root / "README.txt").write_text("not audio")
  return rows


def test_csv_layout_maps_emotions_and_counts_the_dropped(tmp_path):
  rows = make_csv_copy(tmp_path)
  m = lssed.scan(str(tmp_path), lssed.Options())
  assert m.layout == "csv"
  kept = [r for r in rows if r[0] in lssed.CLASSES]
  assert len(m.labels) == len(kept) == 48
  np.testing.assert_array_equal(
      m.labels, [lssed.CLASSES.index(r[0]) for r in kept])
  assert m.dropped == {"fear": 6, "surprise": 6}
  assert m.speakers == tuple(r[1] for r in kept)
  assert "dropped 12 (fear 6, surprise 6)" in m.summary()
  # Angry 0, Neutral 1, Happy 2, Sad 3: the authors' label ids
  assert lssed.CLASSES == ("angry", "neutral", "happy", "sad")


def test_tsv_and_renamed_columns(tmp_path):
  make_csv_copy(tmp_path, "labels.tsv", "\t", ("file", "Emotion", "actor"))
  o = lssed.Options(metadata="labels.tsv", path_column="file",
                    emotion_column="Emotion", speaker_column="actor")
  m = lssed.scan(str(tmp_path), o)
  assert len(m.labels) == 48 and len(set(m.speakers)) == 6
  with pytest.raises(ConfigError) as err:  # default column names
    lssed.scan(str(tmp_path), lssed.Options(metadata="labels.tsv"))
  msg = str(err.value)
  assert "data.lssed.path_column='path'" in msg and "file, Emotion, actor" \
      in msg and "\n" not in msg


def test_folder_layout(tmp_path):
  make_folder_copy(tmp_path)
  m = lssed.scan(str(tmp_path), lssed.Options())
  assert m.layout == "folders" and m.speakers is None
  assert np.bincount(m.labels).tolist() == [6, 6, 6, 6]
  assert m.dropped == {"fear": 3, "surprise": 3}
  assert all(p.lower().endswith(".wav") for p in m.paths)


def test_unknown_emotions_can_be_refused_or_merged(tmp_path):
  make_folder_copy(tmp_path)
  with pytest.raises(ConfigError) as err:
    lssed.scan(str(tmp_path), lssed.Options(unknown="error"))
  assert "data.lssed.emotions" in str(err.value)
  merged = lssed.DEFAULT_EMOTIONS.replace("sad=sad", "sad=fear,sad")
  m = lssed.scan(str(tmp_path), lssed.Options(emotions=merged))
  assert np.bincount(m.labels).tolist() == [6, 6, 6, 9]
  assert m.dropped == {"surprise": 3}
  for bad in ("angry=a;neutral=n;happy=h", "angry=a;calm=c;happy=h;sad=s",
              "angry=x;neutral=x;happy=h;sad=s"):
    with pytest.raises(ConfigError, match="data.lssed.emotions"):
      lssed.parse_emotions(bad)


def test_split_is_speaker_disjoint_and_fixed(tmp_path):
  make_csv_copy(tmp_path)
  o = lssed.Options(test_fraction=0.34)
  m = lssed.scan(str(tmp_path), o)
  train, test = lssed.split(m, o)
  spk = np.asarray(m.speakers)
  assert set(spk[train]).isdisjoint(spk[test])
  assert len(set(spk[test])) == 2 and len(set(spk[train])) == 4
  assert sorted(np.concatenate([train, test]).tolist()) == list(range(48))
  again = lssed.split(m, o)
  np.testing.assert_array_equal(again[1], test)
  other = lssed.split(m, lssed.Options(test_fraction=0.34, split_seed=1))
  assert set(spk[other[1]]) != set(spk[test])  # 15 choices; these differ
  # without speakers: a fixed permutation of the files
  nospk = lssed.Options(speaker_column="", test_fraction=0.25)
  m2 = lssed.scan(str(tmp_path), nospk)
  tr2, te2 = lssed.split(m2, nospk)
  assert len(te2) == 12 and len(tr2) == 36 and m2.speakers is None


def test_audio_is_mono_16k_centre_cropped(tmp_path):
  # a stereo 8 kHz ramp-modulated tone, 2 s: read, resampled, centre 1 s
  rate, x = 8000, tone(440, 2.0, 8000) * np.linspace(0.2, 1.0, 16000)
  write_wav(tmp_path / "a.wav", x, rate, channels=2)
  y = lssed.clip(str(tmp_path), "a.wav", 16000)
  assert y.shape == (16000, 1) and y.dtype == np.int16
  full = lssed.speech.resample(x.astype(np.float32), rate)
  np.testing.assert_allclose(y[:, 0] / 32768, full[8000:24000], atol=2e-4)
  spec = np.abs(np.fft.rfft(y[:, 0].astype(np.float64)))
  assert abs(np.argmax(spec) - 440) <= 1
  short = lssed.clip(str(tmp_path), "a.wav", 40000)  # 2 s + 0.5 s of zeros
  assert np.all(short[32000:] == 0) and np.any(short[31000:32000] != 0)
  write_wav(tmp_path / "b.wav", x, rate)
  with open(tmp_path / "c.wav", "wb") as f:
    f.write(b"not a wav")
  with pytest.raises(ValueError, match="not a PCM WAV"):
    lssed.read_pcm16(str(tmp_path / "c.wav"))


@pytest.mark.parametrize("layout", ["csv", "folders"])
def test_data_load_reads_the_copy(tmp_path, layout, capsys):
  copy = tmp_path / "copy"
  copy.mkdir()
  (make_csv_copy if layout == "csv" else make_folder_copy)(copy)
  opts = {"seconds": 0.5}
  d = data_lib.load("lssed", str(tmp_path / "tfds"), 0.2,
                    local_dir=str(copy), options=opts)
  n = 48 if layout == "csv" else 24
  assert d.num_classes == 4 and d.input_shape == (8000, 1)
  assert d.train_x.dtype == np.int16
  assert len(d.train_y) + len(d.val_y) + len(d.test_y) == n
  assert set(np.unique(np.concatenate([d.train_y, d.test_y]))) <= {0, 1, 2, 3}
  assert "dropped" in capsys.readouterr().err
  x = d.normalize(d.test_x)
  assert x.dtype == np.float32 and np.all(np.isfinite(x))
  if layout == "csv":  # the stored speakers of test are not in train
    from jaxticket.data.builders import Lssed
    o = lssed.Options(seconds=0.5)
    m = lssed.scan(str(copy), o)
    root = tmp_path / "tfds" / "local" / f"lssed-{lssed.digest(str(copy), o, m)}"
    src = Lssed(options=o, data_dir=str(root),
                file_format="array_record").as_data_source()
    spk = {k: {src[k][i]["speaker"] for i in range(len(src[k]))}
           for k in ("train", "test")}
    assert spk["train"].isdisjoint(spk["test"]) and len(spk["test"]) == 1
    train, test = lssed.split(m, o)
    assert len(src["test"]) == len(test) == len(d.test_y)


def test_missing_copy_is_one_line_naming_the_key_and_fix(tmp_path):
  for folder in ("", str(tmp_path / "nowhere")):
    with pytest.raises(ValueError) as err:
      data_lib.load("lssed", str(tmp_path / "tfds"), local_dir=folder)
    msg = str(err.value)
    assert "data.dir=" in msg and "--config.data.dir=" in msg
    assert "tobefans/LSSED" in msg and "\n" not in msg
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="holds no files"):
    data_lib.load("lssed", str(tmp_path / "tfds"),
                  local_dir=str(tmp_path / "empty"))


def test_config_validates_the_section():
  cfg = config.load(str(ROOT / "configs/speech_lssed_logmel_cnn.py") + ":tiny")
  assert cfg.data.name == "lssed" and cfg.data.lssed.seconds == 1.0
  config.validate(cfg)  # the folder itself is read at load time
  for key, value in (("layout", "xml"), ("unknown", "keep"), ("seconds", 0.0),
                     ("test_fraction", 1.0), ("emotions", "angry=a")):
    bad = cfg.copy_and_resolve_references()
    bad.data.lssed[key] = value
    with pytest.raises(ConfigError, match=f"data.lssed.{key}"):
      config.validate(bad)


@pytest.mark.parametrize("folder", ["", "nowhere"])
def test_cli_missing_folder_is_one_line(tmp_path, capsys, folder):
  from jaxticket import cli
  args = ["sanity", "--config",
          str(ROOT / "configs/speech_lssed_logmel_cnn.py") + ":tiny",
          "--workdir", str(tmp_path / "run"),
          f"--config.data.data_dir={tmp_path / 'tfds'}"]
  if folder:
    args.append(f"--config.data.dir={tmp_path / folder}")
  code = cli.main(args)
  err = capsys.readouterr().err.strip().splitlines()
  assert code != 0 and any("--config.data.dir=" in l and "data.dir=" in l
                           for l in err)
  assert not any("Traceback" in l for l in err)


@pytest.mark.slow
def test_sanity_runs_on_the_fixture(tmp_path):
  from jaxticket.experiments.sanity import sanity
  copy = tmp_path / "copy"
  copy.mkdir()
  make_csv_copy(copy)
  cfg = config.load(str(ROOT / "configs/speech_lssed_logmel_cnn.py") + ":tiny")
  cfg.data.dir = str(copy)
  cfg.data.data_dir = str(tmp_path / "tfds")
  cfg.data.lssed.seconds = 0.5
  summary = sanity.run(cfg, str(tmp_path / "run"), progress=False)
  assert summary.dataset == "lssed" and summary.verdicts
  for f in ("report.md", "summary.json", "metrics.jsonl", "config.json"):
    assert (tmp_path / "run" / f).exists()
