import glob
import os

import pytest

from jaxticket import config
from jaxticket.experiments.sanity import sanity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))


def test_configs_exist():
  names = {os.path.basename(p) for p in CONFIGS}
  assert {"mnist1d_lenet.py", "mnist_lenet.py", "cifar10_resnet20.py",
          "cifar10_vgg16.py", "fashion_mnist_lenet.py"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize("size", ["", ":tiny"])
def test_every_shipped_config_loads_and_validates(path, size):
  cfg = config.validate(config.load(path + size))
  if size:
    assert cfg.train.steps <= 100 and cfg.seeds <= 2
  sanity.validate(cfg)  # e.g. its sanity.levels lie within imp.levels


@pytest.mark.parametrize("size", [None, "tiny"])
def test_embedded_default_validates_for_sanity(size):
  sanity.validate(config.default_config(size))


def test_bad_regexes_and_sanity_levels():
  cfg = config.default_config()
  cfg.masks.prunable = "["
  with pytest.raises(config.ConfigError, match="masks.prunable='\\['.*"
                     "not a valid regular expression"):
    config.validate(cfg)
  cfg = config.default_config()
  cfg.sanity.levels = (5, 13)
  with pytest.raises(config.ConfigError, match=r"imp.levels=12\].*"
                     r"sanity.levels=5\)"):
    sanity.validate(cfg)


def test_overrides_parse_by_type():
  cfg = config.default_config()
  config.apply_overrides(cfg, ["train.lr=0.05", "seeds=3", "model.residual=false",
                               "train.milestones=0.3,0.6", "model.name=cnn1d"])
  assert cfg.train.lr == 0.05 and cfg.seeds == 3 and cfg.model.residual is False
  assert tuple(cfg.train.milestones) == (0.3, 0.6) and cfg.model.name == "cnn1d"
  with pytest.raises(config.ConfigError, match="Did you mean seed, seeds"):
    config.apply_overrides(cfg, ["seedz=3"])
  with pytest.raises(config.ConfigError, match="needs a value"):
    config.apply_overrides(cfg, ["seeds"])


def test_data_dir_only_for_datasets_read_from_a_folder():
  cfg = config.default_config()
  assert cfg.data.dir == ""
  config.apply_overrides(cfg, ["data.dir=/somewhere"])
  with pytest.raises(config.ConfigError, match="data.dir='/somewhere'"):
    config.validate(cfg)
  config.apply_overrides(cfg, ["data.name=fashion_mnist"])
  config.validate(cfg)  # the folder is checked when data are loaded


def test_unknown_size():
  with pytest.raises(config.ConfigError, match="tiny"):
    config.default_config("huge")
