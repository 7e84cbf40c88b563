"""SegNet: the decoder stage by stage, as feature energy (RMS over channels) per pixel.

Each decoder stage puts its input back where the encoder's max-pool found its maxima (zeros
elsewhere) and convolves the sparse map into a dense one. The decoder is not linear, so no
exact split of the logits exists; what the maps show is where each stage carries signal: the
unpooled map (at most one position in four of each 2x2 window) and the stage's densified
output, deepest first.
"""

from __future__ import annotations

import torch

from fcnlab.explain.result import DecoderStage, SegNetExplanation
from fcnlab.explain.sizes import pad_input
from fcnlab.models import Segmenter
from fcnlab.models.backbones.base import indices_key
from fcnlab.models.heads.segnet import SegNetDecoder
from fcnlab.models.layers import max_unpool


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(1).sqrt()[0]


def explain_segnet(model: Segmenter, x: torch.Tensor) -> SegNetExplanation:
    """The decoder stages of one image (``x`` is 1 x 3 x H x W, the model in eval mode)."""
    head = model.head
    assert isinstance(head, SegNetDecoder)
    features = model.backbone(pad_input(model, x))
    y = features[head.stage_names[0]]
    stages = []
    for name, stage in zip(head.stage_names, head.stages, strict=True):
        level = int(name[-1]) - 1
        before = features[f"stage{level}"]  # the map this stage's pool read
        unpooled = max_unpool(y, features[indices_key(name)], before.shape[-2:])
        y = stage(unpooled)
        stages.append(
            DecoderStage(
                name=name,
                stride=1 if level == 0 else model.backbone.info(f"stage{level}").stride,
                unpooled_energy=_rms(unpooled).numpy(),
                output_energy=_rms(y).numpy(),
                density=float((unpooled != 0).float().mean()) if unpooled.numel() else 0.0,
            )
        )
    return SegNetExplanation(stages)
