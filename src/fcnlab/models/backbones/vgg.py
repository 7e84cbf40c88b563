"""VGG11/13/16/19 (and _bn) from torchvision: five pool stages, fc6/fc7 for convolutionalising."""

from __future__ import annotations

import torchvision
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from .base import (
    Backbone,
    FeatureInfo,
    classifier_weights,
    dilate_units,
    pool_with_indices,
    run_with_pool_indices,
    run_with_taps,
)
from .weights import WeightsArg, load_backbone_weights

_CONFIG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


class VGGBackbone(Backbone):
    """``features`` is torchvision's module, so its ImageNet state dict loads unchanged.

    With ``pool_indices`` (SegNet) the five pools return their indices too, and no pool is
    dilated: the encoder runs at its own stride, 32.
    """

    fc_kernel = 7
    fc_in_channels = 512

    def __init__(
        self, features: nn.Sequential, output_stride: int, pool_indices: bool = False
    ) -> None:
        super().__init__()
        self.features = features
        self.pool_indices = pool_indices
        pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
        if pool_indices:
            pool_with_indices(features)
        # Each layer is its own unit: pools become 3x3/1 and later convs dilate (DeepLab-v1).
        dilate_units(list(features), 1, output_stride)
        self._taps = {i: f"stage{k + 1}" for k, i in enumerate(pools)}
        widths = [_width_before(features, i) for i in pools]
        self.feature_info = [
            FeatureInfo(f"stage{k + 1}", widths[k], min(2 ** (k + 1), output_stride))
            for k in range(5)
        ]

    def forward(self, x):
        if self.pool_indices:
            return run_with_pool_indices(self.features, x, self._taps)
        return run_with_taps(self.features, x, self._taps)

    def stage_convs(self) -> list[list[nn.Conv2d]]:
        """The convolutions of each stage, shallow to deep (what SegNet's decoder mirrors)."""
        stages: list[list[nn.Conv2d]] = [[]]
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                stages.append([])
            elif isinstance(layer, nn.Conv2d):
                stages[-1].append(layer)
        return stages[:5]


def _width_before(features: nn.Sequential, index: int) -> int:
    convs = [m for m in list(features)[:index] if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def build_vgg(
    name: str, weights: WeightsArg, output_stride: int, pool_indices: bool = False
) -> VGGBackbone:
    arch = name.removesuffix("_bn")
    batch_norm = name.endswith("_bn")
    if weights is None:
        # Only the convolutional part: skips building the 120M-parameter classifier.
        features = make_layers(cfgs[_CONFIG[arch]], batch_norm=batch_norm)
        _init_like_torchvision(features)
        return VGGBackbone(features, output_stride, pool_indices)
    full = getattr(torchvision.models, name)(weights=None)
    load_backbone_weights(full, name, weights, discard=("classifier.6.",))
    backbone = VGGBackbone(full.features, output_stride, pool_indices)
    if not pool_indices:  # SegNet has no fully connected layers to convolutionalise
        linear6, linear7 = full.classifier[0], full.classifier[3]
        backbone.pretrained_classifier = classifier_weights(linear6, linear7)
    return backbone


def _init_like_torchvision(features: nn.Sequential) -> None:
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
