"""The head contract: what a segmenter needs from the part that turns features into logits.

A head is an ``nn.Module`` that

- reads the backbone's feature dict in ``forward(features)`` and returns N x C x h x w logits
  (at the input's size or coarser: the segmenter resizes them bilinearly);
- has ``num_classes`` and ``reset_classifier(n)``, which rebuilds every class-wide layer;
- sets ``size_divisor`` when it needs every map to be exactly 1/stride of the input (FCN's
  fused skips): the segmenter then pads the input to a multiple of it and crops the logits.

Each architecture's module exposes ``build(backbone, num_classes, options)`` returning its head;
the registry entry points at it, so ``create_model`` has no per-architecture code.
"""

from __future__ import annotations

from torch import nn


class Head(nn.Module):
    num_classes: int
    #: The input is padded to a multiple of this before the backbone runs (1: no padding).
    size_divisor: int = 1

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError
