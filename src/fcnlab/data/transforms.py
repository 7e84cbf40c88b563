"""Paired image/mask transforms (torchvision.transforms.v2) and the training/eval presets.

Every preset is a callable ``(tv_tensors.Image uint8 3xHxW, tv_tensors.Mask HxW) ->
(float32 3xH'xW' normalised image, int64 H'xW' mask)``. Geometry runs on uint8 images (the
fast resize kernels); only the cropped image is converted to float, then colour-jittered
(cheaper on float than on uint8) and normalised. v2 dispatches by type: masks are
resized with nearest neighbour only and never touched by colour transforms, so no label value
is ever interpolated; crop padding fills the image with 0 and the mask with ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from fcnlab.labels import IMAGENET_MEAN, IMAGENET_STD


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range``, times ``base_scale``.

    Images use bilinear interpolation with antialiasing; masks always use nearest (v2's
    resize kernel for ``tv_tensors.Mask`` ignores the interpolation argument).
    """

    def __init__(self, scale_range: tuple[float, float], base_scale: float = 1.0) -> None:
        super().__init__()
        low, high = scale_range
        if not 0 < low <= high or base_scale <= 0:
            raise ValueError(f"scale_range {scale_range} and base_scale {base_scale} must be > 0")
        self.scale_range = (float(low), float(high))
        self.base_scale = float(base_scale)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = _size_of(flat_inputs)
        low, high = self.scale_range
        scale = self.base_scale * (low + float(torch.rand(())) * (high - low))
        return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(
            F.resize, inpt, params["size"], interpolation=v2.InterpolationMode.BILINEAR
        )


class MaskToLong(v2.Transform):
    """Make the mask an int64 ``HxW`` tensor (dropping a leading channel of 1)."""

    _transformed_types = (tv_tensors.Mask,)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt.ndim == 3 and inpt.shape[0] == 1:
            inpt = inpt[0]
        return tv_tensors.Mask(inpt.to(torch.int64))


def _size_of(flat_inputs: list[Any]) -> tuple[int, int]:
    for item in flat_inputs:
        if isinstance(item, (tv_tensors.Image, tv_tensors.Mask)):
            height, width = F.get_size(item)
            return height, width
    raise TypeError("RandomScale needs a tv_tensors.Image or tv_tensors.Mask input")


def _finish(
    mean: Sequence[float], std: Sequence[float], color_jitter: float = 0.0
) -> list[v2.Transform]:
    steps: list[v2.Transform] = [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True)
    ]
    if color_jitter > 0:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    return [*steps, v2.Normalize(mean=list(mean), std=list(std)), MaskToLong()]


def train_transforms(
    crop_size: int | tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    ignore_index: int = 255,
    base_scale: float = 1.0,
    blur: float = 0.0,
) -> v2.Compose:
    """Random scale, blur, crop (padded with 0 / ``ignore_index``), flip, jitter, normalise.

    ``crop_size`` is (H, W). ``base_scale`` sets the working resolution (0.5 trains at half
    size); the random factor from ``scale_range`` multiplies it. ``color_jitter`` is the
    brightness/contrast/saturation strength (0 turns it off); ``blur`` the probability of a
    Gaussian blur of the image (5x5, sigma drawn from [0.1, 1.5]; the mask is left as it is).
    """
    crop = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
    steps: list[v2.Transform] = [RandomScale(scale_range, base_scale)]
    if blur > 0:  # before the crop, so its zero padding stays zero
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=blur))
    steps += [
        v2.RandomCrop(
            crop, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
        ),
    ]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _finish(mean, std, color_jitter))


def eval_transforms(
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> v2.Compose:
    """Full size: only convert to float and normalise."""
    return v2.Compose(_finish(mean, std))
