"""Masked-LM pre-training of the small BERT-style encoder (2 layers, dim
128, 4 heads, pre-LN, byte tokens, 64 per window) on the King James Bible
(Debian bible-kjv), then fine-tuning on Rotten Tomatoes sentiment from the
checkpoint vs from scratch (README, "Pre-trained transformers").

  jaxticket pretrain --config configs/pretrain_kjv.py
  jaxticket pretrain --config configs/pretrain_kjv.py:tiny   # < 1 min
"""

from jaxticket.config import default_config


def get_config(arg=None):
  return default_config(arg or None)
