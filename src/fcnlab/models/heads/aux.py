"""Auxiliary head on the /16 feature (stage4), used only for an extra training loss."""

from __future__ import annotations

from torch import nn

from fcnlab.models.layers import conv_bn_relu


class AuxHead(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        hidden = max(in_channels // 4, 32)
        super().__init__(
            conv_bn_relu(in_channels, hidden, 3), nn.Dropout(0.1), nn.Conv2d(hidden, num_classes, 1)
        )

    def reset_classifier(self, num_classes: int) -> None:
        self[-1] = nn.Conv2d(self[-1].in_channels, num_classes, 1)
