"""Model names users type (``<arch>_<backbone>``) and the one function that builds them.

The registry is two plain dicts: architectures here, backbones in ``backbones/__init__``.
A name is valid when its backbone has every feature the architecture needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import BACKBONES, BackboneEntry
from fcnlab.models.heads.aux import AuxHead
from fcnlab.models.heads.deeplab import DeepLabV3Head, DeepLabV3PlusHead
from fcnlab.models.heads.fcn import SKIPS, FCNHead
from fcnlab.models.segmenter import Segmenter


@dataclass(frozen=True)
class ArchEntry:
    kind: str  # "fcn" or "deeplab"
    needs: tuple[str, ...]  # backbone stages the head reads
    default_output_stride: int
    families: tuple[str, ...] = ("vgg", "resnet", "mobilenet", "alexnet")


ARCHITECTURES: dict[str, ArchEntry] = {
    **{
        arch: ArchEntry("fcn", tuple(f"stage{5 - k}" for k in range(skips + 1)), 32)
        for arch, skips in SKIPS.items()
    },
    "deeplabv3": ArchEntry("deeplab", ("stage5",), 16, ("resnet", "mobilenet")),
    "deeplabv3plus": ArchEntry("deeplab", ("stage2", "stage5"), 16, ("resnet", "mobilenet")),
}
UPSAMPLE_MODES = ("transposed", "bilinear")


def _valid(arch: ArchEntry, backbone: BackboneEntry) -> bool:
    return backbone.family in arch.families and set(arch.needs) <= set(backbone.stages)


def list_models() -> list[str]:
    """Every valid ``<arch>_<backbone>`` name, sorted."""
    return sorted(
        f"{a}_{b}"
        for a, arch in ARCHITECTURES.items()
        for b, backbone in BACKBONES.items()
        if _valid(arch, backbone)
    )


def parse_name(name: str) -> tuple[str, str]:
    """Split a model name into (arch, backbone), or explain which names exist."""
    arch, _, backbone = name.partition("_")
    if name in list_models():
        return arch, backbone
    if arch not in ARCHITECTURES:
        raise FcnlabError(
            f"unknown model {name!r}: architecture {arch!r} is not one of "
            f"{', '.join(ARCHITECTURES)}."
        )
    if backbone not in BACKBONES:
        raise FcnlabError(
            f"unknown model {name!r}: backbone {backbone!r} is not one of {', '.join(BACKBONES)}."
        )
    valid = [m.partition("_")[2] for m in list_models() if m.startswith(arch + "_")]
    entry, backbone_entry = ARCHITECTURES[arch], BACKBONES[backbone]
    lacking = [s for s in entry.needs if s not in backbone_entry.stages]
    reason = (
        f"it needs the /{2 ** int(lacking[0][-1])} feature ({lacking[0]}), which {backbone} lacks"
        if lacking
        else f"it needs an atrous {' or '.join(entry.families)} backbone"
    )
    raise FcnlabError(
        f"{arch} does not work with {backbone} ({reason}); valid backbones for {arch}: "
        f"{', '.join(valid)}."
    )


def create_model(
    name: str,
    num_classes: int,
    *,
    backbone_weights: str | Path | None = None,
    output_stride: int | None = None,
    fc_width: int = 4096,
    upsample: str = "transposed",
    freeze_final_upsample: bool = False,
    aux: bool = False,
    width_mult: float = 1.0,
) -> Segmenter:
    """Build a segmentation model by name, e.g. ``create_model("fcn8s_vgg16", 21)``.

    Args:
        backbone_weights: None (random init), ``"imagenet"`` (torchvision's weights,
            downloaded and cached by torch.hub) or a path to a torchvision state dict.
        output_stride: stride of the deepest feature; FCN defaults to 32 (the paper),
            DeepLab to 16. Smaller strides use dilation where the backbone allows it.
        fc_width: channels of fc6/fc7 for FCN on VGG/AlexNet (4096 in the paper).
        upsample: FCN upsampling, ``"transposed"`` (bilinear-initialised) or ``"bilinear"``.
        freeze_final_upsample: keep FCN's last upsampling fixed at bilinear.
        aux: add an auxiliary head on the /16 feature (training loss only).
        width_mult: MobileNetV2 width multiplier (ImageNet weights exist for 1.0 only).
    """
    arch_name, backbone_name = parse_name(name)
    arch, entry = ARCHITECTURES[arch_name], BACKBONES[backbone_name]
    _check_args(name, arch, entry, num_classes, output_stride, fc_width, upsample, width_mult)
    stride = output_stride or min(arch.default_output_stride, max(entry.output_strides))
    extra = {"width_mult": width_mult} if entry.family == "mobilenet" else {}
    backbone = entry.build(weights=backbone_weights, output_stride=stride, **extra)
    if arch.kind == "fcn":
        head = FCNHead(backbone, num_classes, arch_name, fc_width, upsample, freeze_final_upsample)
        if backbone.pretrained_classifier is not None:
            head.load_pretrained_classifier(backbone.pretrained_classifier)
        size_divisor = backbone.feature_info[-1].stride
    else:
        head_cls = DeepLabV3PlusHead if arch_name == "deeplabv3plus" else DeepLabV3Head
        head, size_divisor = head_cls(backbone, num_classes), 1
    backbone.pretrained_classifier = None  # consumed; do not keep a second copy alive
    aux_head = AuxHead(backbone.info("stage4").channels, num_classes) if aux else None
    args = {
        "name": name,
        "num_classes": num_classes,
        "output_stride": stride,
        "fc_width": fc_width,
        "upsample": upsample,
        "freeze_final_upsample": freeze_final_upsample,
        "aux": aux,
        "width_mult": width_mult,
    }
    return Segmenter(backbone, head, size_divisor, aux_head, args)


def _check_args(
    name: str,
    arch: ArchEntry,
    entry: BackboneEntry,
    num_classes: int,
    output_stride: int | None,
    fc_width: int,
    upsample: str,
    width_mult: float,
) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise FcnlabError(f"num_classes must be a positive integer, not {num_classes!r}.")
    strides = (
        entry.output_strides
        if arch.kind == "fcn"
        else tuple(s for s in entry.output_strides if s in (8, 16))
    )
    if output_stride is not None and output_stride not in strides:
        raise FcnlabError(
            f"{name} supports output_stride {', '.join(map(str, strides))}, not {output_stride}."
        )
    if isinstance(fc_width, bool) or not isinstance(fc_width, int) or fc_width < 1:
        raise FcnlabError(f"fc_width must be a positive integer, not {fc_width!r}.")
    if fc_width != 4096 and not (arch.kind == "fcn" and entry.family in ("vgg", "alexnet")):
        raise FcnlabError(f"fc_width applies to FCN on VGG/AlexNet only; {name} has no fc6/fc7.")
    if upsample not in UPSAMPLE_MODES:
        raise FcnlabError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {upsample!r}.")
    if width_mult != 1.0 and entry.family != "mobilenet":
        raise FcnlabError(f"width_mult applies to mobilenet_v2 backbones only, not {name}.")
    if not width_mult > 0:
        raise FcnlabError(f"width_mult must be positive, not {width_mult!r}.")
