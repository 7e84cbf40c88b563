"""FCN: what the /32 path and each skip add to the prediction, as an exact decomposition.

The FCN head computes ``score = score_fr(fc(stage5))``, then for each skip
``score = up(score) + score_skip(feature)``, and finally ``upscore_final(score)``, which the
segmenter resizes (when needed) and crops. Everything after a score conv is linear and has no
bias: transposed convolutions are built with ``bias=False``, bilinear interpolation and the
crop are linear. So each stage's own score map (its 1x1 conv, bias included), pushed through
the upsampling layers that follow it, is its exact share of the logits; the shares of all
stages add up to them, and the running sums are the predictions of FCN-32s, -16s, -8s, ...
"""

from __future__ import annotations

import torch

from fcnlab.explain.result import FCNExplanation, KernelView, StageMap
from fcnlab.explain.sizes import pad_input, to_input
from fcnlab.masks import predicted_classes
from fcnlab.models import Segmenter
from fcnlab.models.heads.fcn import FCNHead
from fcnlab.models.layers import Upsample, bilinear_kernel


def fcn_contributions(model: Segmenter, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``[(stage name, N x C x H x W)]``, the /32 path first: each stage's score map pushed
    through the rest of the network (the model in eval mode); they sum to ``model(x)``."""
    head = model.head
    assert isinstance(head, FCNHead)
    n, size = x.shape[0], (x.shape[-2], x.shape[-1])
    padded = pad_input(model, x)
    features = model.backbone(padded)
    deep = features["stage5"]
    if head.fc is not None:
        deep = head.fc(deep)
    names = ["stage5"]
    # One batch holds every stage's share so far; each upsampling runs once over all of them.
    scores = head.score_fr(deep)
    for name in head.skip_names:
        skip = head.score_skips[name](features[name])
        scores = torch.cat([head.upscores[name](scores), skip])
        names.append(name)
    out = to_input(head.upscore_final(scores), padded.shape[-2:], size)
    return [(name, out[k * n : (k + 1) * n]) for k, name in enumerate(names)]


def fcn_kernels(head: FCNHead) -> list[KernelView]:
    """Each learned transposed convolution of the head, fusion order, the final one last."""
    layers: list[tuple[str, Upsample]] = [
        (f"head.upscores.{name}", head.upscores[name]) for name in head.skip_names
    ]
    layers.append(("head.upscore_final", head.upscore_final))
    views = []
    for layer, upsample in layers:
        if upsample.deconv is None:
            continue
        weight = upsample.deconv.weight.detach().float().cpu()
        initial = bilinear_kernel(weight.shape[0], weight.shape[-1])
        diagonal = torch.diagonal(weight, dim1=0, dim2=1).permute(2, 0, 1)  # C x k x k
        total = float(weight.abs().sum())
        views.append(
            KernelView(
                layer=layer,
                factor=upsample.factor,
                learned=diagonal.numpy().copy(),
                bilinear=initial[0, 0].numpy().copy(),
                deviation=float(torch.linalg.norm(weight - initial) / torch.linalg.norm(initial)),
                cross_class=0.0 if total == 0 else (total - float(diagonal.abs().sum())) / total,
                frozen=not upsample.deconv.weight.requires_grad,
            )
        )
    return views


def stage_label(head: FCNHead, index: int) -> str:
    stride = head.strides[index]
    if index == 0:
        through = " + fc6/fc7" if head.fc is not None else ""
        return f"stage5{through} (/{stride}, score_fr)"
    return f"{head.skip_names[index - 1]} skip (/{stride})"


def explain_fcn(model: Segmenter, x: torch.Tensor, logits: torch.Tensor) -> FCNExplanation:
    """The stages of one image (``x`` is 1 x 3 x H x W, ``logits`` the model's on it)."""
    head = model.head
    assert isinstance(head, FCNHead)
    parts = fcn_contributions(model, x)
    stages, total = [], torch.zeros_like(logits)
    for index, (name, part) in enumerate(parts):
        total = total + part
        stages.append(
            StageMap(
                name=name,
                label=stage_label(head, index),
                stride=head.strides[index],
                contribution=part[0].float().numpy(),
                fused_mask=predicted_classes(total)[0].numpy(),
            )
        )
    residual = float((total - logits).abs().max()) if logits.numel() else 0.0
    return FCNExplanation(stages, fcn_kernels(head), head.upsample_mode, residual)
