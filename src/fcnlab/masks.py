"""Class-index masks: the arg-max of scores, their colours and their blend over images.

Contract: masks are ``H x W`` arrays of class indices, images ``H x W x 3`` uint8 RGB, and a
palette is one ``(r, g, b)`` per class, index ``i`` coloured ``palette[i]``. Pixels equal to
``ignore_index`` are black in :func:`colorize` and left as the plain image (transparent) in
:func:`overlay`. Any other index without a palette entry raises
:class:`~fcnlab.errors.FcnlabError`. :func:`predicted_classes` turns ``N x C x H x W``
scores into masks. Evaluation, the predictor, the export checks, the report and the demo share
these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fcnlab.errors import FcnlabError

Palette = Sequence[tuple[int, int, int]]


def predicted_classes(scores: torch.Tensor) -> torch.Tensor:
    """``scores.argmax(1)`` of ``N x C x H x W`` scores, computed channels-last.

    On CPUs, arg-max across the strided channel dimension is ~5x slower than over the
    contiguous last dimension, and costs more than the whole network for small models.
    """
    if scores.device.type != "cpu":
        return scores.argmax(1)
    return scores.permute(0, 2, 3, 1).contiguous().argmax(-1)


def colorize(mask: np.ndarray, palette: Palette, ignore_index: int | None) -> np.ndarray:
    """An ``H x W x 3`` uint8 image with each class in its palette colour, ignore in black."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise FcnlabError(f"A mask must be H x W class indices, got shape {mask.shape}.")
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    known = (mask >= 0) & (mask < len(colours))
    ignored = mask == ignore_index if ignore_index is not None else np.zeros_like(known)
    unknown = ~known & ~ignored
    if unknown.any():
        found = np.unique(mask[unknown])[:5].tolist()
        ignore = "no ignore index is set" if ignore_index is None else f"ignore is {ignore_index}"
        raise FcnlabError(
            f"The mask holds values {found} that have no palette colour "
            f"({len(colours)} colours) and {ignore}; check the palette and ignore_index."
        )
    # Table lookup on the in-range indices; everything else stays black.
    out = np.zeros((*mask.shape, 3), dtype=np.uint8)
    show = known & ~ignored
    out[show] = colours[mask[show]]
    return out


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    palette: Palette,
    ignore_index: int | None,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend the coloured mask over ``image`` with weight ``alpha``; ignore pixels stay as-is."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FcnlabError(
            f"An image must be H x W x 3 uint8 RGB, got shape {image.shape} and {image.dtype}."
        )
    mask = np.asarray(mask)
    if image.shape[:2] != mask.shape:
        raise FcnlabError(
            f"The image is {image.shape[0]}x{image.shape[1]} but the mask is "
            f"{mask.shape[0]}x{mask.shape[1]}; resize the mask with nearest-neighbour first."
        )
    colour = colorize(mask, palette, ignore_index).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colour
    out = np.rint(blended).astype(np.uint8)
    if ignore_index is not None:
        ignored = mask == ignore_index
        out[ignored] = image[ignored]
    return out
