import itertools

import pytest
import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.infer.tiling import TTA, parse_tta, probabilities, tile_starts, tiled_logits


def local_model(radius: int = 2, classes: int = 4) -> nn.Module:
    """A purely local net: receptive field radius ``radius`` (stacked 3x3 convs)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels = 3
    for _ in range(radius):
        layers += [nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU()]
        channels = 8
    layers.append(nn.Conv2d(channels, classes, 1))
    return nn.Sequential(*layers).eval()


class Recorder:
    def __init__(self, model: nn.Module) -> None:
        self.model, self.shapes = model, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        with torch.no_grad():
            return self.model(x)


@pytest.mark.parametrize("size", [(70, 95), (64, 64), (33, 130)])
def test_tiled_equals_whole_when_the_receptive_field_fits_the_overlap(size):
    model = local_model(radius=2)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        whole = model(x)
    runner = Recorder(model)
    # overlap 0.5 of 32 = 16 pixels; weights vanish within 16/4 = 4 >= radius 2 of inner edges
    tiled = tiled_logits(runner, x, (32, 32), overlap=0.5)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    # memory is bounded by the tile: the model never sees more than a tile
    assert max(s[2] for s in runner.shapes) <= 32 and max(s[3] for s in runner.shapes) <= 32
    if size[0] > 32:
        assert len(runner.shapes) > 1


def test_tiling_a_model_with_a_large_receptive_field_differs():
    model = local_model(radius=8)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        whole = model(x)
    tiled = tiled_logits(Recorder(model), x, (32, 32), overlap=0.25)
    assert not torch.allclose(tiled, whole, atol=1e-4)


def test_tile_starts_cover_the_image_and_end_at_the_edge():
    starts = tile_starts(100, 32, 0.25)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 24 for a, b in itertools.pairwise(starts))
    assert tile_starts(20, 32, 0.25) == [0]


def flip_equivariant_model() -> nn.Module:
    conv = nn.Conv2d(3, 4, 5, padding=2)
    with torch.no_grad():
        conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    return conv.eval()


def test_flip_tta_of_a_flip_equivariant_model_changes_nothing():
    model = flip_equivariant_model()
    x = torch.randn(1, 3, 21, 34)
    runner = Recorder(model)
    plain = probabilities(runner, x)
    flipped = probabilities(runner, x, tta=TTA(flip=True))
    torch.testing.assert_close(flipped, plain, rtol=1e-5, atol=1e-6)
    assert len(runner.shapes) == 3  # one plain view, then two views for flip TTA


def test_flip_tta_of_an_asymmetric_model_changes_probabilities():
    torch.manual_seed(1)
    model = nn.Conv2d(3, 4, 5, padding=2).eval()
    x = torch.randn(1, 3, 21, 34)
    plain = probabilities(Recorder(model), x)
    flipped = probabilities(Recorder(model), x, tta=TTA(flip=True))
    assert not torch.allclose(flipped, plain, atol=1e-4)


def test_multiscale_probabilities_are_at_image_size_and_sum_to_one():
    runner = Recorder(local_model())
    x = torch.randn(2, 3, 30, 41)
    probs = probabilities(runner, x, scale=0.5, tta=TTA(flip=True, scales=(0.75, 1.5)))
    assert probs.shape == (2, 4, 30, 41)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 30, 41))
    seen = sorted({s[2:] for s in runner.shapes})
    assert seen == [(11, 15), (22, 31)]  # 30x41 at 0.5 x 0.75 and 0.5 x 1.5


def test_parse_tta():
    assert parse_tta(None) == TTA()
    assert parse_tta("flip") == TTA(flip=True)
    assert parse_tta("scales=0.75,1,1.25") == TTA(False, (0.75, 1.0, 1.25))
    assert parse_tta("flip,scales=0.5,1") == TTA(True, (0.5, 1.0))
    assert parse_tta("flip,scales=0.5,1").views == 4


@pytest.mark.parametrize("text", ["mirror", "scales=abc", "scales=0", "flip,2"])
def test_parse_tta_rejects_nonsense(text):
    with pytest.raises(FcnlabError, match="--tta"):
        parse_tta(text)


def test_overlap_out_of_range_is_an_error():
    with pytest.raises(FcnlabError, match="overlap"):
        tiled_logits(Recorder(local_model()), torch.randn(1, 3, 40, 40), (16, 16), overlap=1.0)
