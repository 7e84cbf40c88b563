"""MobileNetV2 from torchvision, atrous: /2 (16 ch), /4 (24), /8 (32), /16 (96), /32 (320).

The deepest feature is the last inverted-residual block (320 channels at width 1.0), before
the 1280-channel 1x1 conv, which a segmenter does not use.
"""

from __future__ import annotations

import torchvision
from torch import nn

from fcnlab.errors import FcnlabError

from .base import Backbone, FeatureInfo, dilate_units, run_with_taps
from .weights import WeightsArg, load_backbone_weights

# Index of the last block of each stage in torchvision's ``features``.
_TAPS = {1: "stage1", 3: "stage2", 6: "stage3", 13: "stage4", 17: "stage5"}


class MobileNetV2Backbone(Backbone):
    def __init__(self, net: torchvision.models.MobileNetV2, output_stride: int) -> None:
        super().__init__()
        self.features = net.features[:18]  # drops the 1280-channel 1x1 conv
        dilate_units(list(self.features), 1, output_stride)
        self.feature_info = [
            FeatureInfo(name, _out_channels(self.features[i]), min(2 ** (k + 1), output_stride))
            for k, (i, name) in enumerate(_TAPS.items())
        ]

    def forward(self, x):
        return run_with_taps(self.features, x, _TAPS)


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def build_mobilenet_v2(
    name: str, weights: WeightsArg, output_stride: int, width_mult: float = 1.0
) -> MobileNetV2Backbone:
    if weights == "imagenet" and width_mult != 1.0:
        raise FcnlabError(
            f"torchvision's ImageNet weights for mobilenet_v2 exist only at width 1.0, "
            f"not {width_mult}; use width_mult=1.0 or backbone_weights=None."
        )
    net = torchvision.models.mobilenet_v2(weights=None, width_mult=width_mult)
    load_backbone_weights(net, name, weights, discard=("classifier.",))
    return MobileNetV2Backbone(net, output_stride)
