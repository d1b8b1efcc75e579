"""A log-mel 1-D CNN on espeak-ng prosody classes (issue 20, speech).

``espeak_prosody`` is *synthetic* speech (8 classes = voice x pitch x
speed, one random word per clip; jaxticket/data/speech.py), generated
offline by the espeak-ng synthesizer (``apt-get install espeak-ng``): a
test bed for tickets on audio, not emotion recognition. The model
computes 40-band log-mel features from the raw 16 kHz waveform inside the
program (models/audio.py) and runs 3 conv layers over time.

The recipe is NOT tuned (SGD momentum 0.9, lr 0.1, cosine, 1000 steps);
tune it on validation before reading a verdict from it.

  jaxticket sanity --config configs/speech_espeak_logmel_cnn.py:tiny
"""

from jaxticket.config import default_config, sized


def get_config(arg=None):
  c = default_config()
  c.data.name = "espeak_prosody"
  c.model.name = "logmel_cnn"
  c.train.lr = 0.1
  c.train.weight_decay = 5e-4
  c.train.steps = 1000
  c.train.batch_size = 64
  c.train.eval_every = 250
  c.imp.levels = 4
  c.seeds = 2
  c.sanity.lrs = (0.03, 0.1)
  c.sanity.levels = (2, 4)
  c.sanity.seeds = 2
  return sized(c, arg, tiny_width=0.25)
