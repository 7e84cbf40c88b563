"""Small self-made checkpoints for the predict, export and serve tests (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch

from fcnlab.engine.checkpoint import make_checkpoint, save_checkpoint
from fcnlab.labels import LabelSpace
from fcnlab.models import create_model

INFO = LabelSpace(
    name="tiny",
    classes=("background", "disc", "square"),
    palette=((0, 0, 0), (220, 20, 60), (0, 128, 255)),
    ignore_index=255,
)
NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
#: Narrow versions of each family, quick on a CPU.
SMALL = {
    "deeplabv3plus_mobilenet_v2": {"width_mult": 0.25},
    "deeplabv3_mobilenet_v2": {"width_mult": 0.25},
    "fcn8s_vgg11": {"fc_width": 32},
    "fcn16s_vgg11": {"fc_width": 32},
    "fcn32s_alexnet": {"fc_width": 32},
}


def tiny_model(name: str = "deeplabv3plus_mobilenet_v2", seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    model = create_model(name, len(INFO.classes), **{**SMALL.get(name, {}), **kwargs})
    # Random BN statistics, so folding and export are tested on non-trivial affines.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def write_checkpoint(
    path: Path, name: str = "deeplabv3plus_mobilenet_v2", scale: float = 1.0, **kwargs
) -> Path:
    model = tiny_model(name, **kwargs)
    checkpoint = make_checkpoint(model, INFO, config={}, scale=scale)
    return save_checkpoint(checkpoint, path)
