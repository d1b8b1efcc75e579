"""BERT-style IMP and mask transfer (Chen et al. 2020) from a `jaxticket
pretrain` checkpoint: IMP on Rotten Tomatoes sentiment and on MLM (add
fortunes / austen with --config.transfer.tasks), with random-pruning and
random-reinit baselines, then the transfer matrix (README, "Tickets in the pre-trained transformer").

  jaxticket pretrain --config configs/pretrain_kjv.py --workdir runs/bert
  jaxticket transfer --config configs/transfer_kjv.py --config.init.checkpoint=runs/bert
  jaxticket transfer --config configs/transfer_kjv.py:tiny --config.init.checkpoint=runs/bert_tiny
"""

from jaxticket.config import default_config


def get_config(arg=None):
  return default_config(arg or None)
