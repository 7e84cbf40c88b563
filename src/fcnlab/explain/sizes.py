"""The segmenter's size handling, step by step, so decompositions end where its logits do.

:class:`~fcnlab.models.segmenter.Segmenter` zero-pads the input (bottom/right) to a multiple of
the head's ``size_divisor``, resizes the head's output bilinearly to the padded size when it
is not that size already, and crops back to the input. Both steps after the head are linear,
so a sum of score maps that the head adds up stays a sum through them. A test compares these
steps with ``model(x)``, so they cannot drift apart from the segmenter unnoticed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fcnlab.models import Segmenter


def pad_input(model: Segmenter, x: torch.Tensor) -> torch.Tensor:
    """``x`` zero-padded bottom/right to a multiple of the model's size divisor."""
    d = model.size_divisor
    pad_h, pad_w = -x.shape[-2] % d, -x.shape[-1] % d
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h))


def to_input(scores: torch.Tensor, padded: torch.Size, size: tuple[int, int]) -> torch.Tensor:
    """Head-resolution scores at the padded size (bilinear when they differ), then cropped
    to ``size`` = the input's (H, W)."""
    if scores.shape[-2:] != padded:
        scores = F.interpolate(scores, size=padded, mode="bilinear", align_corners=False)
    return scores[..., : size[0], : size[1]]


def resize_map(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N x C x h x w maps resized bilinearly to ``size`` (for showing coarse maps)."""
    if tuple(values.shape[-2:]) == tuple(size):
        return values
    return F.interpolate(values, size=size, mode="bilinear", align_corners=False)
