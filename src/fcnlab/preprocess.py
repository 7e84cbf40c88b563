"""Images to model input, as the model was trained: what prediction and export share.

- :func:`to_batch`: same-size RGB images to one ``N x 3 x H x W`` float batch, normalised
  with the model card's mean and std;
- :func:`resize`: bilinear resizing of batches (anti-aliased when shrinking), used for the
  working scale, TTA scales and logits back at full size;
- :func:`calibration_batch`: one image as a runner sees it (normalised, at the working
  scale), for int8 calibration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fcnlab.card import ModelCard
from fcnlab.errors import FcnlabError


def to_batch(images: Sequence[Image.Image], card: ModelCard) -> torch.Tensor:
    """Same-size RGB images to a batch normalised as the model was trained."""
    arrays = [np.asarray(image.convert("RGB"), dtype=np.uint8) for image in images]
    if len({a.shape for a in arrays}) != 1:
        raise FcnlabError("images of one batch must share a size; predict them one by one.")
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
    del arrays  # in place from here on: one float copy of the batch at a time
    mean = torch.tensor(card.mean).view(1, 3, 1, 1)
    return batch.sub_(mean).div_(torch.tensor(card.std).view(1, 3, 1, 1))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def calibration_batch(card: ModelCard, image: Image.Image) -> torch.Tensor:
    """One image as the runner sees it: normalised, at the model's working scale."""
    x = to_batch([image], card)
    return resize(x, tuple(max(1, round(d * card.scale)) for d in x.shape[-2:]))
