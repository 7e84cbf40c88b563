"""Fold BatchNorm into the convolution before it, for inference.

In eval mode ``bn(conv(x))`` is an affine map of ``conv(x)`` per channel, so it can be baked
into the convolution's weight and bias: one layer fewer to run, the same outputs up to float
rounding. Two patterns cover every model in the zoo:

- inside an ``nn.Sequential``: a ``Conv2d`` directly followed by a ``BatchNorm2d``;
- torchvision's ResNet stem and blocks: children named ``convK`` and ``bnK`` side by side
  (``forward`` calls ``bnK(convK(x))``), and ImagePooling's ``conv``/``bn``.

The folded BN is replaced by ``nn.Identity``, so module names keep their places.
"""

from __future__ import annotations

import copy
import itertools

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# Pairs of (conv, bn) child names that the owner's forward applies back to back.
_NAMED_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv", "bn"))
_PAIR_OWNERS = ("BasicBlock", "Bottleneck", "ResNetBackbone", "ImagePooling")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (put in eval mode) with every foldable BatchNorm folded away."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
        elif type(module).__name__ in _PAIR_OWNERS:
            _fold_named(module)
    return folded


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and conv.out_channels == bn.num_features
    )


def _fold_sequential(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    for first, second in itertools.pairwise(names):
        conv, bn = seq._modules[first], seq._modules[second]
        if _foldable(conv, bn):
            seq._modules[first] = fuse_conv_bn_eval(conv, bn)
            seq._modules[second] = nn.Identity()


def _fold_named(owner: nn.Module) -> None:
    for conv_name, bn_name in _NAMED_PAIRS:
        conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
        if conv is not None and bn is not None and _foldable(conv, bn):
            setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(owner, bn_name, nn.Identity())
