"""Model registry: ``build(name, num_classes, ...)`` returns a Flax module.

Every model is called as ``model.apply(variables, x, train=...)`` with a
batched input (B, spatial..., C), keeps BatchNorm statistics (if any) in the
``batch_stats`` collection, and names its classifier ``head``.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from jaxticket.core.checks import check_choice

from jaxticket.models.convnets import VGG_PLANS, ConvNet, MobileNetV1, VGG
from jaxticket.models.audio import LogMelCNN
from jaxticket.models.gnn import GCN, GraphSAGE
from jaxticket.models.mlp import MLP
from jaxticket.models.resnets import CNN1D, ResNet
from jaxticket.models.layers import scaled
from jaxticket.models.transformer import Transformer
from jaxticket.models import transformer as transformer_lib


def _cifar_resnet(depth: int) -> Callable[..., nn.Module]:
  def make(num_classes, width=1.0, depth_=None, residual=True):
    d = depth_ or depth
    if (d - 2) % 6:
      raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 56, ...); "
                       f"got model.depth={d}.")
    return ResNet((16, 32, 64), (d - 2) // 6, num_classes, width, residual)
  return make


def _mlp(num_classes, width=1.0, depth=None, residual=True):
  del residual
  return MLP((scaled(256, width),) * (depth or 2), num_classes)


def _lenet(num_classes, width=1.0, depth=None, residual=True):
  del depth, residual
  return MLP((scaled(300, width), scaled(100, width)), num_classes)


def _convnet(pairs):
  def make(num_classes, width=1.0, depth=None, residual=True):
    del depth, residual
    return ConvNet(pairs, num_classes, width)
  return make


def _vgg(layers):
  def make(num_classes, width=1.0, depth=None, residual=True):
    del depth, residual
    return VGG(VGG_PLANS[layers], num_classes, width)
  return make


def _mobilenet(num_classes, width=1.0, depth=None, residual=True):
  del depth, residual
  return MobileNetV1(num_classes, width)


def _resnet18(num_classes, width=1.0, depth=None, residual=True):
  del depth
  return ResNet((64, 128, 256, 512), 2, num_classes, width, residual)


def _cnn1d(num_classes, width=1.0, depth=None, residual=True):
  del residual
  return CNN1D(num_classes, width, depth or 3)


def _logmel_cnn(num_classes, width=1.0, depth=None, residual=True):
  del residual
  return LogMelCNN(num_classes, width, depth or 3)


def _resnet1d(num_classes, width=1.0, depth=None, residual=True):
  # depth = residual blocks per stage (2 stages: 32 and 64 channels).
  return ResNet((32, 64), depth or 2, num_classes, width, residual, ndim=1)


def _transformer(num_classes, width=1.0, depth=None, residual=True,
                 vocab_size=260, heads=4, mlp_ratio=4, max_len=128,
                 norm="post", output="classify", pool="cls"):
  """BERT-style encoder (models/transformer.py): ``width`` scales the model
  dim 128 (a multiple of ``heads``), ``depth`` = layers (default 2)."""
  del residual
  dim = max(heads, int(round(128 * width / heads)) * heads)
  return Transformer(vocab_size=vocab_size, num_classes=num_classes,
                     layers=depth or 2, heads=heads, dim=dim,
                     mlp_dim=mlp_ratio * dim, max_len=max_len, norm=norm,
                     output=output, pool=pool)


def _gnn(cls):
  def make(num_classes, width=1.0, depth=None, residual=True):
    """A GNN (models/gnn.py) over the data's graph context: ``width``
    scales the hidden width 64, ``depth`` = layers (default 2)."""
    del residual
    return cls(num_classes=num_classes, hidden=scaled(64, width),
               depth=depth or 2)
  return make


#: Models whose inputs are node indices of a graph context (graph sets).
GRAPH_MODELS = ("gcn", "sage")
#: Models whose inputs are token ids (text sets; their vocabulary and
#: length come from the data: experiments.common.model_options).
TEXT_MODELS = ("transformer",)
#: Each model's trained leaves (``Parametrization.trainable``) where it is
#: not every leaf: a GNN's ``edges`` weights stay frozen at 1 (only an edge
#: mask, ``jaxticket graph``, changes the graph).
TRAINED = {name: r"(^|/)(kernel|bias)$" for name in GRAPH_MODELS}


#: Model-specific options ``build`` forwards (``**options``), per model.
OPTIONS = {"transformer": ("vocab_size", "heads", "mlp_ratio", "max_len",
                           "norm", "output", "pool")}
#: Each model's default ``masks.prunable`` where it is not every kernel.
PRUNABLE = {"transformer": transformer_lib.PRUNABLE}


#: name -> (constructor, number of spatial dims the input must have; 0 = any).
REGISTRY: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "mlp": (_mlp, 0),
    "lenet_300_100": (_lenet, 0),
    "conv2": (_convnet(1), 2),
    "conv4": (_convnet(2), 2),
    "conv6": (_convnet(3), 2),
    "vgg11": (_vgg(11), 2),
    "vgg16": (_vgg(16), 2),
    "vgg19": (_vgg(19), 2),
    "mobilenet_v1": (_mobilenet, 2),
    "resnet18": (_resnet18, 2),
    "resnet20": (_cifar_resnet(20), 2),
    "resnet32": (_cifar_resnet(32), 2),
    "resnet56": (_cifar_resnet(56), 2),
    "resnet110": (_cifar_resnet(110), 2),
    "cnn1d": (_cnn1d, 1),
    "resnet1d": (_resnet1d, 1),
    "logmel_cnn": (_logmel_cnn, 1),  # raw 16 kHz waveforms [T, 1]
    "transformer": (_transformer, 0),  # token ids (L,); issue 17
    "gcn": (_gnn(GCN), 0),  # node indices of a graph set; issue 20
    "sage": (_gnn(GraphSAGE), 0),
}


def check_name(name: str) -> None:
  """Raise a ValueError naming the valid models if ``name`` is unknown."""
  check_choice("model.name", name, sorted(REGISTRY), "model")


def build(name: str, num_classes: int, width: float = 1.0,
          depth: int | None = None, residual: bool = True,
          input_shape: tuple[int, ...] | None = None, **options
          ) -> nn.Module:
  """Construct model ``name``; checks the input rank if ``input_shape`` given.

  Args:
    name: a key of :data:`REGISTRY`.
    num_classes: size of the classifier ``head``.
    width: channel/unit multiplier (1.0 = the paper's width).
    depth: model-specific depth (CIFAR ResNet total depth 6n+2, MLP/CNN-1D
      layer count, ResNet-1D blocks per stage); None = the named default.
    residual: False removes the skip connections of residual models.
    input_shape: one example's shape (spatial..., channels), e.g. (32, 32, 3).
    **options: model-specific options (:data:`OPTIONS`), e.g. the
      transformer's ``heads``, ``max_len``, ``norm``, ``output``.
  """
  check_name(name)
  unknown = sorted(set(options) - set(OPTIONS.get(name, ())))
  if unknown:
    raise ValueError(f"model {name!r} takes no option(s) {unknown}; its "
                     f"options: {list(OPTIONS.get(name, ())) or 'none'}.")
  if width <= 0:
    raise ValueError(f"model.width must be positive; got {width}.")
  make, spatial = REGISTRY[name]
  if input_shape is not None and spatial and len(input_shape) - 1 != spatial:
    raise ValueError(
        f"Model {name!r} needs {spatial}-D inputs (spatial dims + channels) "
        f"but the data has shape {tuple(input_shape)}. Use an "
        f"{'image' if spatial == 2 else '1-D'} dataset or another model "
        f"(e.g. {'cnn1d, resnet1d, mlp' if len(input_shape) == 2 else 'resnet20, conv4, mlp'}).")
  return make(num_classes, width, depth, residual, **options)
