"""The segmenter wires a backbone to a head and maps logits back to the input size.

It is the only place that knows about input sizes: a head or backbone with a ``size_divisor``
(FCN, whose fused maps must be exactly 1/stride of the input; backbones with TF "same"
padding) gets the input zero-padded (bottom/right) to a multiple of it and its logits cropped
back; heads that predict at a lower resolution
(DeepLab) are resized bilinearly; SegNet's unpooling returns the input's own size. Any
H, W >= 1 gives N x C x H x W logits. The head contract is in ``heads/base.py``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import Backbone
from fcnlab.models.heads.base import Head


class Segmenter(nn.Module):
    """``model(x)`` returns logits; with an aux head in training mode, ``{"out", "aux"}``."""

    def __init__(
        self,
        backbone: Backbone,
        head: Head,
        aux: nn.Module | None = None,
        args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.aux = backbone, head, aux
        self.size_divisor = math.lcm(head.size_divisor, backbone.size_divisor)
        #: The ``create_model`` arguments that rebuild this model (stored in checkpoints).
        self.args: dict[str, Any] = dict(args or {})

    @property
    def weights_source(self) -> dict[str, str] | None:
        """Where the backbone's initial weights came from (None: random initialisation)."""
        return self.backbone.weights_source

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def reset_classifier(self, num_classes: int) -> None:
        self.head.reset_classifier(num_classes)
        if self.aux is not None:
            self.aux.reset_classifier(num_classes)
        self.args["num_classes"] = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise FcnlabError(f"expected an N x 3 x H x W image batch, got shape {tuple(x.shape)}.")
        h, w = x.shape[-2:]
        padded = self._pad(x)
        features = self.backbone(padded)
        out = _to_size(self.head(features), padded.shape[-2:])[..., :h, :w]
        if self.aux is None or not self.training:
            return out
        aux = _to_size(self.aux(features["stage4"]), padded.shape[-2:])[..., :h, :w]
        return {"out": out, "aux": aux}

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        d = self.size_divisor
        pad_h, pad_w = -x.shape[-2] % d, -x.shape[-1] % d
        if pad_h == 0 and pad_w == 0 and not _tracing():
            return x
        # While tracing (ONNX, TorchScript, torch.compile) the pad is always recorded, so the
        # graph stays right for sizes that are not multiples of the stride.
        return F.pad(x, (0, pad_w, 0, pad_h))


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _to_size(logits: torch.Tensor, size: torch.Size) -> torch.Tensor:
    if logits.shape[-2:] == size:
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
