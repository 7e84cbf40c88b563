"""DeepLabv3 and DeepLabv3+ heads (Chen et al. 2017, 2018).

ASPP: a 1x1 conv, three 3x3 atrous convs (rates 6/12/18 at output stride 16, doubled at 8;
depthwise-separable in v3+) and image pooling, 256 channels each, concatenated, projected to
256 and dropped out at 0.1. v3 then scores with a 3x3 conv and a 1x1; v3+ upsamples to the /4
low-level feature, concatenates its 48-channel projection and decodes with two separable 3x3s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import Backbone
from fcnlab.models.heads.base import Head
from fcnlab.models.layers import PoolingBatchNorm, conv_bn_relu, separable_conv_bn_relu
from fcnlab.models.options import ModelOptions

ASPP_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48


class ImagePooling(nn.Module):
    """Global average pool, 1x1 conv + BN + ReLU, then broadcast back to the map's size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = PoolingBatchNorm(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.relu(self.bn(self.conv(self.pool(x))))
        # Upsampling a 1x1 map is a broadcast; expand_as keeps it exact and export-friendly.
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    def __init__(self, in_channels: int, rates: tuple[int, ...], separable: bool) -> None:
        super().__init__()
        atrous = separable_conv_bn_relu if separable else conv_bn_relu
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, ASPP_CHANNELS, 1)]
            + [atrous(in_channels, ASPP_CHANNELS, 3, dilation=r) for r in rates]
        )
        self.pooling = ImagePooling(in_channels, ASPP_CHANNELS)
        self.project = nn.Sequential(
            conv_bn_relu((len(rates) + 2) * ASPP_CHANNELS, ASPP_CHANNELS, 1), nn.Dropout(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches] + [self.pooling(x)]
        return self.project(torch.cat(outs, dim=1))


def aspp_rates(output_stride: int) -> tuple[int, int, int]:
    return (6, 12, 18) if output_stride == 16 else (12, 24, 36)


def _check_output_stride(backbone: Backbone, arch: str) -> int:
    stride = backbone.feature_info[-1].stride
    if stride not in (8, 16):
        raise FcnlabError(f"{arch} needs output stride 8 or 16, not {stride}.")
    return stride


def build_v3(backbone: Backbone, num_classes: int, options: ModelOptions) -> DeepLabV3Head:
    return DeepLabV3Head(backbone, num_classes)


def build_v3plus(backbone: Backbone, num_classes: int, options: ModelOptions) -> DeepLabV3PlusHead:
    return DeepLabV3PlusHead(backbone, num_classes)


class DeepLabV3Head(Head):
    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        stride = _check_output_stride(backbone, "deeplabv3")
        self.aspp = ASPP(backbone.feature_info[-1].channels, aspp_rates(stride), separable=False)
        self.conv = conv_bn_relu(ASPP_CHANNELS, ASPP_CHANNELS, 3)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Conv2d(ASPP_CHANNELS, num_classes, 1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.conv(self.aspp(features["stage5"])))


class DeepLabV3PlusHead(Head):
    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        stride = _check_output_stride(backbone, "deeplabv3plus")
        if "stage2" not in backbone.stage_names or backbone.info("stage2").stride != 4:
            raise FcnlabError("deeplabv3plus needs a /4 low-level feature; the backbone has none.")
        self.aspp = ASPP(backbone.feature_info[-1].channels, aspp_rates(stride), separable=True)
        self.low_level = conv_bn_relu(backbone.info("stage2").channels, LOW_LEVEL_CHANNELS, 1)
        self.decoder = nn.Sequential(
            separable_conv_bn_relu(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, ASPP_CHANNELS, 3),
            separable_conv_bn_relu(ASPP_CHANNELS, ASPP_CHANNELS, 3),
        )
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Conv2d(ASPP_CHANNELS, num_classes, 1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        low = features["stage2"]
        x = self.aspp(features["stage5"])
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, self.low_level(low)], dim=1)
        return self.classifier(self.decoder(x))
