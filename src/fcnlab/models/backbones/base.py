"""The backbone contract shared by every head.

A backbone is an ``nn.Module`` whose ``forward`` returns ``dict[str, Tensor]`` keyed by stage
name. Stage ``stagek`` has nominal stride ``2**k`` (stage1 = /2 ... stage5 = /32), whatever the
network calls it (VGG's pool3, ResNet's layer2, ...). ``feature_info`` lists, shallow to deep,
each returned stage with its channels and its *actual* stride after dilation, so heads can
derive their widths and upsampling factors instead of assuming them.

A backbone built with ``pool_indices=True`` (VGG, SegNet-Basic's encoder: what SegNet needs)
also returns each pool's indices under ``indices_key(stage)`` and its input as ``stage0``, so
a decoder can unpool every stage back to its exact pre-pool size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FeatureInfo:
    """One feature map a backbone returns."""

    name: str
    channels: int
    stride: int


class Backbone(nn.Module):
    """Base class: subclasses set ``feature_info`` and implement ``forward``."""

    feature_info: list[FeatureInfo]
    #: Kernel of the classifier's first Linear layer as a convolution (7 for VGG, 6 for
    #: AlexNet), or None when the network has no fully connected classifier to convolutionalise.
    fc_kernel: int | None = None
    #: Input width of fc6 (channels of the last stage for VGG/AlexNet).
    fc_in_channels: int | None = None
    #: The input must be a multiple of this (TF "same" padding); the segmenter pads to it.
    size_divisor: int = 1

    def __init__(self) -> None:
        super().__init__()
        # The pretrained classifier (fc6/fc7 Linear weights) is kept off the module so it is not
        # part of the backbone's state dict; an FCN head consumes it once at construction.
        self.pretrained_classifier: dict[str, torch.Tensor] | None = None
        #: Where the weights came from (plain data for the checkpoint), None for random init.
        self.weights_source: dict[str, str] | None = None

    def info(self, name: str) -> FeatureInfo:
        for feature in self.feature_info:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @property
    def stage_names(self) -> list[str]:
        return [f.name for f in self.feature_info]


def _set_dilation(conv: nn.Conv2d, dilation: int) -> None:
    kernel = conv.kernel_size[0]
    if kernel == 1:
        return
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (kernel - 1) // 2, dilation * (kernel - 1) // 2)


def dilate_units(units: Sequence[nn.Module], stride: int, output_stride: int) -> None:
    """Turn strides into dilation (atrous convolution) once ``output_stride`` is reached.

    ``units`` are the network's blocks in order and ``stride`` is the stride of their input.
    A unit that would push the stride past ``output_stride`` keeps its resolution: its strided
    convolutions/pools get stride 1 (the strided conv keeps the previous dilation, as in
    torchvision's ``replace_stride_with_dilation``) and every later 3x3 conv is dilated so the
    receptive field is unchanged. Pretrained weights stay valid because only strides,
    dilations and paddings change.
    """
    dilation = 1
    for unit in units:
        layers = [m for m in unit.modules() if isinstance(m, nn.Conv2d | nn.MaxPool2d)]
        strided = [m for m in layers if _stride(m) > 1]
        if strided and stride >= output_stride:
            previous, dilation = dilation, dilation * _stride(strided[0])
            for layer in layers:
                if isinstance(layer, nn.MaxPool2d):
                    # DeepLab-v1's trick: a 3x3/1 pool keeps the size and still pools.
                    layer.kernel_size, layer.stride, layer.padding = 3, 1, 1
                elif layer in strided:
                    layer.stride = (1, 1)
                    _set_dilation(layer, previous)
                else:
                    _set_dilation(layer, dilation)
            continue
        if strided:
            stride *= _stride(strided[0])
        if dilation > 1:
            for layer in layers:
                if isinstance(layer, nn.Conv2d):
                    _set_dilation(layer, dilation)


def _stride(layer: nn.Module) -> int:
    stride = layer.stride
    return stride[0] if isinstance(stride, tuple) else int(stride)


def classifier_weights(linear6: nn.Linear, linear7: nn.Linear) -> dict[str, torch.Tensor]:
    """The first two classifier Linears of a VGG/AlexNet, for convolutionalising fc6/fc7."""
    return {
        "fc6.weight": linear6.weight.detach().clone(),
        "fc6.bias": linear6.bias.detach().clone(),
        "fc7.weight": linear7.weight.detach().clone(),
        "fc7.bias": linear7.bias.detach().clone(),
    }


def indices_key(stage: str) -> str:
    """Where a pooling backbone puts a stage's max-pool indices in its feature dict."""
    return f"{stage}_indices"


def pool_with_indices(layers: nn.Sequential) -> None:
    """Make every 2x2/2 max-pool in ``layers`` return its indices (SegNet's encoder).

    Pools use ``ceil_mode`` as in SegNet's Caffe model: an odd-sized map keeps its last row and
    column (a 1x1 map pools to 1x1), and unpooling restores the exact pre-pool size.
    """
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.MaxPool2d):
            layers[i] = nn.MaxPool2d(2, 2, ceil_mode=True, return_indices=True)


def run_with_pool_indices(layers: nn.Sequential, x: torch.Tensor, taps: dict[int, str]):
    """Like :func:`run_with_taps` for pools that return indices: each tapped pool's output
    under its stage name, its indices under ``indices_key(stage)``, and the input as
    ``stage0`` (so a decoder knows every pre-pool size, the first included)."""
    out = {"stage0": x}
    for i, layer in enumerate(layers):
        if i in taps:
            x, out[indices_key(taps[i])] = layer(x)
            out[taps[i]] = x
        else:
            x = layer(x)
    return out


def run_with_taps(layers: nn.Sequential, x: torch.Tensor, taps: dict[int, str]):
    """Run ``layers`` in order and return the outputs of the layers listed in ``taps``."""
    out = {}
    for i, layer in enumerate(layers):
        x = layer(x)
        if i in taps:
            out[taps[i]] = x
    return out
