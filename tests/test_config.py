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


def test_ma2021_resnet_prunes_block_and_downsample_convs_only():
  """Ma et al.'s code prunes the ResNet's block and downsample convolutions:
  not the stem convolution, not the fc layer."""
  import jax
  import jax.numpy as jnp
  from jaxticket import models
  from jaxticket.core import masks
  cfg = config.load("configs/cifar10_resnet20.py")
  model = models.build("resnet20", 10, width=0.25, input_shape=(32, 32, 3))
  params = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))["params"]
  mask = masks.ones(params, cfg.masks.prunable)
  pruned = [p for p, m in zip(jax.tree.leaves(masks.leaf_paths(params)),
                              jax.tree.leaves(jax.tree.map(
                                  lambda m: m is not None, mask,
                                  is_leaf=lambda x: x is None)))
            if m]
  assert "ConvBN_0/Conv_0/kernel" not in pruned  # the stem
  assert "head/kernel" not in pruned
  assert len(pruned) == 20  # 9 blocks x 2 convs + 2 downsample shortcuts
  assert all(p.startswith("BasicBlock_") for p in pruned)
  assert config.load("configs/cifar10_vgg16.py").masks.prunable == (
      config.default_config().masks.prunable)


def test_mnist_lenet_uses_openlth_plain_sgd():
  cfg = config.load("configs/mnist_lenet.py")
  assert cfg.train.optimizer == "sgd" and cfg.train.momentum == 0.0


def test_configs_citing_tuning_doc_have_their_section():
  """A shipped config that says its recipe was tuned in docs/tuning.md must
  have its own section there (configs/<name>.py -> '## <name>')."""
  doc = open(os.path.join(ROOT, "docs", "tuning.md")).read()
  sections = {line[3:].split()[0] for line in doc.splitlines()
              if line.startswith("## ")}
  citing = [p for p in CONFIGS if "tuning.md" in open(p).read()]
  assert citing  # the rule is exercised
  for path in citing:
    name = os.path.basename(path)[:-3]
    assert name in sections, f"{name} cites docs/tuning.md, no section"


def test_check_choices_refuses_empty_unknown_and_repeated_names():
  from jaxticket.core import checks
  checks.check_choices("x.methods", ("a", "b"), ("a", "b", "c"), "method")
  for values, match in [((), "x.methods is empty"),
                        (("a", "bb"), "Did you mean 'b'"),
                        (("a", "a"), "repeats a method")]:
    with pytest.raises(checks.ConfigError, match=match):
      checks.check_choices("x.methods", values, ("a", "b", "c"), "method")
