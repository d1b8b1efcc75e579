"""A log-mel 1-D CNN on LSSED's 4 emotions (issue 20, speech).

LSSED (Fan et al. 2021, github tobefans/LSSED) is sent by its authors
under an EULA; nothing downloads it. Point ``data.dir`` at your copy:

  jaxticket sanity --config configs/speech_lssed_logmel_cnn.py:tiny \
      --config.data.dir=/path/to/LSSED

Its on-disk layout is unpublished, so jaxticket/data/lssed.py reads a
metadata CSV/TSV or one folder per emotion; adapt it with
``--config.data.lssed.*`` (layout, metadata, path_column,
emotion_column, speaker_column, emotions, unknown). Classes: Angry 0,
Neutral 1, Happy 2, Sad 3 (the authors' models); other emotions are
dropped and counted. Clips: the centre 3 s at 16 kHz (1 s for ``:tiny``);
test speakers are disjoint from train speakers when speakers are known.

The recipe is NOT tuned (that of configs/speech_espeak_logmel_cnn.py);
tune it on validation before reading a verdict from it. The whole set is
held in memory (int16, 96 kB per 3 s clip): the full LSSED is ~14 GB at
3 s, so on a small machine use a subset listed in a smaller metadata file.
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.data.name = "lssed"
  c.data.dir = ""  # required: --config.data.dir=/path/to/LSSED
  c.data.lssed.seconds = 3.0
  c.model.name = "logmel_cnn"
  c.train.lr = 0.1
  c.train.weight_decay = 5e-4
  c.train.steps = 2000
  c.train.batch_size = 64
  c.train.eval_every = 250
  c.imp.levels = 4
  c.seeds = 2
  c.sanity.lrs = (0.03, 0.1)
  c.sanity.levels = (2, 4)
  c.sanity.seeds = 2
  if arg == "tiny":
    c.data.lssed.seconds = 1.0
  return sized(c, arg, tiny_width=0.25)
