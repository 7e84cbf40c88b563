"""Backbones: declared strides and channels are the real ones, dilation keeps resolution."""

from __future__ import annotations

import pytest
import torch

from fcnlab.models.backbones import BACKBONES


@pytest.mark.parametrize("name", ["vgg11", "resnet18", "resnet50", "mobilenet_v2", "alexnet"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_info_matches_the_maps(name, output_stride):
    entry = BACKBONES[name]
    if output_stride not in entry.output_strides:
        pytest.skip(f"{name} has no output stride {output_stride}")
    backbone = entry.build(weights=None, output_stride=output_stride).eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 64, 96))
    assert list(features) == backbone.stage_names
    for info in backbone.feature_info:
        fmap = features[info.name]
        assert fmap.shape[1] == info.channels
        assert fmap.shape[-2:] == (64 // info.stride, 96 // info.stride), info
    assert backbone.feature_info[-1].stride == output_stride


def test_dilation_keeps_weights_compatible():
    plain = BACKBONES["resnet18"].build(weights=None, output_stride=32)
    dilated = BACKBONES["resnet18"].build(weights=None, output_stride=8)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in dilated.state_dict().items()
    }
    assert dilated.layer4[1].conv1.dilation == (4, 4)
    assert dilated.layer3[0].conv1.stride == (1, 1)


def test_mobilenet_v2_channels_follow_the_paper():
    backbone = BACKBONES["mobilenet_v2"].build(weights=None, output_stride=16)
    channels = {f.name: f.channels for f in backbone.feature_info}
    assert channels == {"stage1": 16, "stage2": 24, "stage3": 32, "stage4": 96, "stage5": 320}
