"""Tiny checkpoints and images for the explain tests (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.checkpoints import tiny_model


def trained_looking(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """``model`` with non-zero skip scores and transposed-conv kernels moved off bilinear, so
    a decomposition has every part to add up (fresh skips start at zero)."""
    generator = torch.Generator().manual_seed(seed)
    head = model.head
    with torch.no_grad():
        for parameter in getattr(head, "score_skips", torch.nn.ModuleDict()).parameters():
            parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
        for module in head.modules():
            if isinstance(module, torch.nn.ConvTranspose2d):
                noise = torch.randn(module.weight.shape, generator=generator)
                module.weight.add_(0.02 * noise)
    return model


@pytest.fixture
def fcn8s():
    return trained_looking(tiny_model("fcn8s_resnet18"))


def picture(height: int, width: int, seed: int = 0) -> Image.Image:
    """A synthetic image: a red disc and a blue square on noise."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(40, 90, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (min(height, width) / 4) ** 2
    pixels[disc] = (220, 30, 60)
    pixels[height // 4 : height // 2, int(width * 0.65) : int(width * 0.85)] = (0, 128, 255)
    return Image.fromarray(pixels)


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "street.png"
    picture(37, 53).save(path)
    return path
