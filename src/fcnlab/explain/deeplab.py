"""DeepLab: how much each ASPP branch, and in v3+ the low-level feature, adds per pixel.

ASPP concatenates its branches (a 1x1 conv, one 3x3 conv per atrous rate, image pooling) and
projects them with a bias-free 1x1 conv before BN and ReLU. A 1x1 conv over a concatenation is
the sum of one 1x1 conv per part, with that part's slice of the weights; so each branch's
contribution to the projection's pre-BN output is exact, and they add up to it.

The v3+ decoder concatenates the upsampled ASPP output with the 48-channel low-level
projection; its first separable conv runs a depthwise conv, BN and ReLU on each channel alone,
then mixes channels with a pointwise conv. Split the same way, the ASPP channels and the
low-level channels each contribute exactly to that pointwise conv's pre-BN output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fcnlab.explain.result import BranchMap, DeepLabExplanation
from fcnlab.explain.sizes import pad_input
from fcnlab.models import Segmenter
from fcnlab.models.heads.deeplab import ASPP, DeepLabV3Head, DeepLabV3PlusHead

Parts = list[tuple[str, torch.Tensor]]


def branch_names(aspp: ASPP) -> list[str]:
    """``"1x1"``, ``"3x3 rate r"`` for each atrous branch, ``"image pooling"``."""
    names = []
    for branch in aspp.branches:
        conv = branch[0]
        kernel, rate = conv.kernel_size[0], conv.dilation[0]
        names.append("1x1" if kernel == 1 else f"{kernel}x{kernel} rate {rate}")
    return [*names, "image pooling"]


def split_conv(conv: nn.Conv2d, parts: Parts) -> Parts:
    """What each input part contributes to ``conv`` applied to their concatenation: the conv
    of that part with its slice of the weights (the bias, if any, as a part of its own)."""
    if conv.groups != 1:
        raise ValueError("split_conv needs a conv that mixes all of its input channels.")
    out, start = [], 0
    for name, value in parts:
        weight = conv.weight[:, start : start + value.shape[1]]
        out.append((name, F.conv2d(value, weight, None, conv.stride, conv.padding, conv.dilation)))
        start += value.shape[1]
    if conv.bias is not None:
        out.append(("bias", conv.bias.view(1, -1, 1, 1).expand_as(out[0][1])))
    return out


def aspp_contributions(aspp: ASPP, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
    """Each branch's contribution to the projection's pre-BN output, and that output."""
    outs = [branch(x) for branch in aspp.branches] + [aspp.pooling(x)]
    conv = aspp.project[0][0]
    total = conv(torch.cat(outs, dim=1))
    return split_conv(conv, list(zip(branch_names(aspp), outs, strict=True))), total


def aspp_output(aspp: ASPP, projected: torch.Tensor) -> torch.Tensor:
    """ASPP's output from its projection's pre-BN output: BN, ReLU, dropout."""
    return aspp.project[1](aspp.project[0][1:](projected))


def decoder_contributions(
    head: DeepLabV3PlusHead, aspp_out: torch.Tensor, low: torch.Tensor
) -> tuple[Parts, torch.Tensor, torch.Tensor]:
    """The ASPP and low-level parts of the decoder's first pointwise conv (pre-BN), that
    conv's output, and the low-level share of the decoder input's energy per pixel."""
    upsampled = F.interpolate(aspp_out, size=low.shape[-2:], mode="bilinear", align_corners=False)
    projected = head.low_level(low)
    joined = torch.cat([upsampled, projected], dim=1)
    block = head.decoder[0]  # depthwise conv, BN, ReLU, then (pointwise conv, BN, ReLU)
    depthwise, pointwise = block[0], block[3][0]
    if depthwise.groups != joined.shape[1]:
        raise ValueError("the decoder's first conv is not depthwise; its input cannot be split.")
    per_channel = block[2](block[1](depthwise(joined)))
    width = upsampled.shape[1]
    parts = [("ASPP", per_channel[:, :width]), ("low-level", per_channel[:, width:])]
    energy = joined.pow(2)
    share = energy[:, width:].sum(1) / energy.sum(1).clamp_min(torch.finfo(energy.dtype).tiny)
    return split_conv(pointwise, parts), pointwise(per_channel), share


def branch_maps(parts: Parts) -> list[BranchMap]:
    norms = [part.norm(dim=1)[0] for _, part in parts]
    total = torch.stack(norms).sum(0).clamp_min(torch.finfo(norms[0].dtype).tiny)
    return [
        BranchMap(name, norm.numpy(), (norm / total).numpy())
        for (name, _), norm in zip(parts, norms, strict=True)
    ]


def _residual(parts: Parts, total: torch.Tensor) -> float:
    return float((sum(p for _, p in parts) - total).abs().max())


def explain_deeplab(model: Segmenter, x: torch.Tensor) -> DeepLabExplanation:
    """The branch shares of one image (``x`` is 1 x 3 x H x W, the model in eval mode)."""
    head = model.head
    assert isinstance(head, DeepLabV3Head | DeepLabV3PlusHead)
    features = model.backbone(pad_input(model, x))
    deep = features["stage5"]
    parts, projected = aspp_contributions(head.aspp, deep)
    explanation = DeepLabExplanation(
        branches=branch_maps(parts),
        projection_norm=projected.norm(dim=1)[0].numpy(),
        stride=model.backbone.feature_info[-1].stride,
        residual=_residual(parts, projected),
    )
    if isinstance(head, DeepLabV3PlusHead):
        split, mixed, share = decoder_contributions(
            head, aspp_output(head.aspp, projected), features["stage2"]
        )
        explanation.decoder = branch_maps(split)
        explanation.low_level_input_share = share[0].numpy()
        explanation.residual = max(explanation.residual, _residual(split, mixed))
    return explanation
