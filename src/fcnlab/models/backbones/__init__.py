"""Backbone registry: one entry per name users type, filled from this explicit list.

Adding a backbone: write its module, add one ``BackboneEntry`` line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .alexnet import build_alexnet
from .base import Backbone, FeatureInfo, dilate_units
from .mobilenet import build_mobilenet_v2
from .resnet import build_resnet
from .vgg import build_vgg

ALL_STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5")


@dataclass(frozen=True)
class BackboneEntry:
    build: Callable[..., Backbone]
    family: str
    stages: tuple[str, ...] = ALL_STAGES
    output_strides: tuple[int, ...] = (8, 16, 32)
    #: Model options its builder takes (see fcnlab.models.options).
    options: tuple[str, ...] = ()


_VGG = ("vgg11", "vgg13", "vgg16", "vgg19")
BACKBONES: dict[str, BackboneEntry] = {
    **{n: BackboneEntry(partial(build_vgg, n), "vgg") for n in _VGG},
    **{f"{n}_bn": BackboneEntry(partial(build_vgg, f"{n}_bn"), "vgg") for n in _VGG},
    **{
        n: BackboneEntry(partial(build_resnet, n), "resnet")
        for n in ("resnet18", "resnet34", "resnet50", "resnet101")
    },
    "mobilenet_v2": BackboneEntry(
        partial(build_mobilenet_v2, "mobilenet_v2"), "mobilenet", options=("width_mult",)
    ),
    "alexnet": BackboneEntry(
        partial(build_alexnet, "alexnet"), "alexnet", ALL_STAGES[2:], output_strides=(32,)
    ),
}

__all__ = ["ALL_STAGES", "BACKBONES", "Backbone", "BackboneEntry", "FeatureInfo", "dilate_units"]
