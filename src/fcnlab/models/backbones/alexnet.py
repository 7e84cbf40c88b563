"""AlexNet from torchvision: pools at /8, /16, /32 (stages 3-5), fc6 is 6x6 over 256 channels.

torchvision's AlexNet does not halve sizes exactly (conv1 11x11/4 pad 2, 3x3/2 pools with no
padding), so the skip maps of an FCN would not line up. conv1 and the pools are padded by
their half-kernel instead, which makes every map exactly 1/stride of the (padded) input.
Paddings hold no weights, so ImageNet checkpoints still load unchanged.
"""

from __future__ import annotations

import torchvision
from torch import nn

from .base import Backbone, FeatureInfo, classifier_weights, run_with_taps
from .weights import WeightsArg, load_backbone_weights


class AlexNetBackbone(Backbone):
    fc_kernel = 6
    fc_in_channels = 256

    def __init__(self, net: torchvision.models.AlexNet) -> None:
        super().__init__()
        self.features = net.features
        self.features[0].padding = (5, 5)
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        for i in pools:
            self.features[i].padding = 1
        self._taps = {i: f"stage{k + 3}" for k, i in enumerate(pools)}
        self.feature_info = [
            FeatureInfo("stage3", 64, 8),
            FeatureInfo("stage4", 192, 16),
            FeatureInfo("stage5", 256, 32),
        ]

    def forward(self, x):
        return run_with_taps(self.features, x, self._taps)


def build_alexnet(name: str, weights: WeightsArg, output_stride: int) -> AlexNetBackbone:
    net = torchvision.models.alexnet(weights=None)
    load_backbone_weights(net, name, weights, discard=("classifier.6.",))
    backbone = AlexNetBackbone(net)
    if weights is not None:
        linear6, linear7 = net.classifier[1], net.classifier[4]
        backbone.pretrained_classifier = classifier_weights(linear6, linear7)
    return backbone
