"""ResNet-18/34/50/101 from torchvision: stem /2, layer1 /4, layer2 /8, layer3 /16, layer4 /32."""

from __future__ import annotations

import torchvision
from torch import nn

from .base import Backbone, FeatureInfo, dilate_units
from .weights import WeightsArg, load_backbone_weights


class ResNetBackbone(Backbone):
    """Keeps torchvision's module names (conv1, bn1, layer1...) so its state dicts load."""

    def __init__(self, net: torchvision.models.ResNet, output_stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        blocks = [*self.layer1, *self.layer2, *self.layer3, *self.layer4]
        dilate_units(blocks, 4, output_stride)
        widths = [64] + [_out_channels(layer) for layer in blocks_of(self)]
        self.feature_info = [
            FeatureInfo(f"stage{k + 1}", widths[k], min(2 ** (k + 1), output_stride))
            for k in range(5)
        ]

    def forward(self, x):
        s1 = self.relu(self.bn1(self.conv1(x)))
        s2 = self.layer1(self.maxpool(s1))
        s3 = self.layer2(s2)
        s4 = self.layer3(s3)
        s5 = self.layer4(s4)
        return {"stage1": s1, "stage2": s2, "stage3": s3, "stage4": s4, "stage5": s5}


def blocks_of(backbone: ResNetBackbone) -> list[nn.Sequential]:
    return [backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4]


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features


def build_resnet(name: str, weights: WeightsArg, output_stride: int) -> ResNetBackbone:
    net = getattr(torchvision.models, name)(weights=None)
    load_backbone_weights(net, name, weights, discard=("fc.",))
    return ResNetBackbone(net, output_stride)
