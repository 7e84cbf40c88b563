"""SegNet: unpooling puts values back at the pooled positions, the decoder mirrors the encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import fcnlab
from fcnlab.models.layers import max_unpool


def test_unpooling_puts_each_maximum_back_where_it_was_found():
    x = torch.tensor(
        [
            [1.0, 9.0, 2.0, 0.0, 5.0],
            [3.0, 4.0, 8.0, 1.0, 6.0],
            [7.0, 0.0, 0.0, 2.0, 1.0],
        ]
    )[None, None]
    pooled, indices = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
    # ceil mode keeps the odd last row and column: windows (rows 0-1 | 2) x (cols 0-1 | 2-3 | 4)
    assert pooled[0, 0].tolist() == [[9.0, 8.0, 6.0], [7.0, 2.0, 1.0]]
    restored = max_unpool(pooled * 10, indices, x.shape[-2:])
    expected = torch.zeros(3, 5)
    for (r, c), v in {
        (0, 1): 90,
        (1, 2): 80,
        (1, 4): 60,
        (2, 0): 70,
        (2, 3): 20,
        (2, 4): 10,
    }.items():
        expected[r, c] = v
    assert restored.shape == (1, 1, 3, 5)
    assert torch.equal(restored[0, 0], expected)
    # the same as torch's own unpooling, which cannot be exported at dynamic sizes
    assert torch.equal(
        restored, F.max_unpool2d(pooled * 10, indices, 2, 2, output_size=x.shape[-2:])
    )


class _Unpool(nn.Module):
    def forward(self, x):
        pooled, indices = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
        return max_unpool(pooled, indices, x.shape[-2:])


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("shape", [(2, 4, 1, 1), (1, 3, 97, 131), (3, 2, 8, 6)])
def test_traced_unpooling_scatter_equals_torch_at_any_size(shape):
    # the traced graph (the scatter that ONNX exports) was recorded at another size
    traced = torch.jit.trace(_Unpool(), torch.randn(1, 2, 6, 10))
    x = torch.randn(shape)
    pooled, indices = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
    theirs = F.max_unpool2d(pooled, indices, 2, 2, output_size=x.shape[-2:])
    assert torch.equal(traced(x), theirs)
    assert torch.equal(_Unpool()(x), theirs)


def _decoder_convs(model) -> list[tuple[int, int, int]]:
    return [
        (m.in_channels, m.out_channels, m.kernel_size[0])
        for m in model.head.stages.modules()
        if isinstance(m, nn.Conv2d)
    ]


def test_segnet_vgg16_decoder_mirrors_the_thirteen_convolutions():
    model = fcnlab.create_model("segnet_vgg16_bn", 11)
    encoder = [m for m in model.backbone.features if isinstance(m, nn.Conv2d)]
    assert len(encoder) == 13 and not any(isinstance(m, nn.Linear) for m in model.modules())
    decoder = _decoder_convs(model)
    mirrored = [(c.out_channels, max(c.in_channels, 64), 3) for c in reversed(encoder)]
    assert decoder == mirrored
    assert decoder[-1] == (64, 64, 3)  # the first stage's mirror ends in 64 channels
    assert model.head.classifier.kernel_size == (1, 1)
    assert (model.head.classifier.in_channels, model.head.classifier.out_channels) == (64, 11)
    assert sum(isinstance(m, nn.MaxPool2d) and m.return_indices for m in model.modules()) == 5
    relus = sum(isinstance(m, nn.ReLU) for m in model.head.modules())
    assert relus == 13  # conv + BN + ReLU throughout the decoder


def test_segnet_basic_is_the_papers_small_network():
    model = fcnlab.create_model("segnet_basic", 11)
    encoder = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in encoder] == [
        (3, 64, 7),
        (64, 64, 7),
        (64, 64, 7),
        (64, 64, 7),
    ]
    assert _decoder_convs(model) == [(64, 64, 7)] * 4
    convs = encoder + [m for m in model.head.stages.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)  # BN after every conv, no biases
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    assert sum(isinstance(m, nn.ReLU) for m in model.backbone.modules()) == 4
    assert not any(isinstance(m, nn.ReLU) for m in model.head.modules())  # none in the decoder
    assert model.args["output_stride"] == 16 and model.size_divisor == 1


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_segnet_vgg16_takes_a_torchvision_vgg16_state_dict(tmp_path, name):
    reference = getattr(torchvision.models, name)(weights=None)
    with torch.no_grad():
        reference.features[0].weight.mul_(3.0)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    model = fcnlab.create_model(f"segnet_{name}", 5, backbone_weights=path)
    ours = model.backbone.features.state_dict()
    theirs = reference.features.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert model.backbone.pretrained_classifier is None  # SegNet keeps no fc layers
