"""Every registered backbone, at every output stride it supports, returns what it declares.

The input is odd-sized (67 x 93), so the size rule of each network is tested exactly:
stride-2 convolutions and pools with half-kernel padding (ResNet, MobileNetV2, the padded
AlexNet) give ``ceil(n / 2)`` at each halving, hence ``ceil(n / stride)``; VGG's 2x2/2 pools
(no padding, floor mode) give ``floor(n / 2)``, hence ``floor(n / stride)``. A dilated stage
keeps its input's size, so the rule applies to the feature's actual (dilated) stride.
Backbones with TF "same" padding (EfficientNet-Lite) declare a ``size_divisor``: the segmenter
pads to it, so they are given the odd size padded up to it, where every map is exactly 1/stride.
"""

from __future__ import annotations

import math

import pytest
import torch

from fcnlab.models.backbones import BACKBONES

H, W = 67, 93
ROUNDING = {
    "vgg": math.floor,
    "resnet": math.ceil,
    "mobilenet": math.ceil,
    "alexnet": math.ceil,
    "efficientnet_lite": math.ceil,
}

CASES = [
    pytest.param(name, stride, id=f"{name}-os{stride}")
    for name, entry in BACKBONES.items()
    for stride in entry.output_strides
]


def test_every_backbone_has_a_stride_and_a_size_rule():
    assert all(entry.output_strides for entry in BACKBONES.values())
    assert {entry.family for entry in BACKBONES.values()} <= set(ROUNDING)


@pytest.mark.parametrize(("name", "output_stride"), CASES)
def test_feature_info_is_exact_for_an_odd_input(name, output_stride, one_thread):
    entry = BACKBONES[name]
    rounding = ROUNDING[entry.family]  # a new family must state its size rule here
    backbone = entry.build(weights=None, output_stride=output_stride).eval()
    assert [f.name for f in backbone.feature_info] == list(entry.stages)
    d = backbone.size_divisor
    h, w = -(-H // d) * d, -(-W // d) * d  # what the segmenter gives it
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, h, w))
    assert list(features) == list(entry.stages)  # exactly these, shallow to deep
    for info in backbone.feature_info:
        k = int(info.name.removeprefix("stage"))
        assert info.stride == min(2**k, output_stride), info
        size = (rounding(h / info.stride), rounding(w / info.stride))
        assert features[info.name].shape == (1, info.channels, *size), info
    assert backbone.feature_info[-1].stride == output_stride
