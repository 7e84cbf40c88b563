"""Test-time augmentation and sliding-window inference, on top of any runner.

- :class:`TTA`: horizontal flip and multi-scale; class probabilities (softmax) of every view
  are averaged at the image's own size.
- :func:`tiled_logits`: the image is cut into overlapping tiles, each run on its own, and the
  logits stitched with weights that fall to zero near a tile's inner edges, so memory is
  bounded by the tile, not the image. A pixel within ``overlap/4`` of an inner edge gets no
  weight from that tile, and is always covered by the neighbour's interior: tiling a model
  whose receptive field radius is at most ``overlap/4`` gives exactly whole-image logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fcnlab.errors import FcnlabError
from fcnlab.infer.runtime import Runner
from fcnlab.preprocess import resize

#: Tile overlaps outside [0, MAX_OVERLAP] make tiles too many (each is mostly overlap).
MAX_OVERLAP = 0.75
#: The smallest tile side: smaller tiles are mostly overlap and take minutes on any image.
MIN_TILE = 32


@dataclass(frozen=True)
class TTA:
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    @property
    def views(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)


def parse_tta(text: str | None) -> TTA:
    """``"flip"``, ``"scales=0.75,1,1.25"``, ``"flip,scales=0.5,1"`` (commas throughout)."""
    if not text:
        return TTA()
    flip, scales, in_scales = False, [], False
    for token in (t.strip() for t in text.split(",")):
        if token == "flip":
            flip, in_scales = True, False
        elif token.startswith("scales="):
            in_scales = True
            scales.append(_scale(token.removeprefix("scales="), text))
        elif in_scales and token:
            scales.append(_scale(token, text))
        else:
            raise FcnlabError(
                f"--tta {text!r} is not understood; use e.g. 'flip', 'scales=0.75,1,1.25' "
                "or 'flip,scales=0.75,1,1.25'."
            )
    return TTA(flip, tuple(scales) or (1.0,))


def _scale(token: str, text: str) -> float:
    try:
        value = float(token)
    except ValueError:
        value = -1.0
    if not 0 < value <= 8:
        raise FcnlabError(f"--tta {text!r}: scale {token!r} must be a number in (0, 8].")
    return value


def probabilities(
    runner: Runner,
    images: torch.Tensor,
    scale: float = 1.0,
    tta: TTA = TTA(),
    tile: tuple[int, int] | None = None,
    overlap: float = 0.25,
) -> torch.Tensor:
    """Class probabilities ``N x C x H x W`` at the images' own size, averaged over TTA views."""
    size = tuple(images.shape[-2:])
    total = None
    for s in tta.scales:
        scaled = tuple(max(1, round(d * scale * s)) for d in size)
        view = resize(images, scaled)
        for flipped in (False, True) if tta.flip else (False,):
            x = view.flip(-1) if flipped else view
            logits = tiled_logits(runner, x, tile, overlap) if tile else runner(x)
            logits = logits.flip(-1) if flipped else logits
            probs = resize(logits.float(), size).softmax(1)
            total = probs if total is None else total.add_(probs)
    return total.div_(tta.views)


def check_tiling(tile: tuple[int, int] | None, overlap: float) -> None:
    """One sentence naming the valid range when ``tile`` or ``overlap`` is outside it."""
    if not 0 <= overlap <= MAX_OVERLAP:
        raise FcnlabError(f"--overlap {overlap} must be between 0 and {MAX_OVERLAP}.")
    if tile is not None and min(tile) < MIN_TILE:
        raise FcnlabError(
            f"--tile {tile[0]}x{tile[1]} is too small; each side must be at least {MIN_TILE}."
        )


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Tile origins covering ``length``; the last tile ends at the edge."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def edge_weights(length: int, start: int, tile: int, total: int, overlap: float) -> torch.Tensor:
    """1-D weights of one tile: 0 within ``overlap*tile/4`` of an inner edge, ramping to 1."""
    band = overlap * tile
    zero, full = band / 4, band / 2
    d = torch.arange(length, dtype=torch.float32)
    w = torch.ones(length)
    if start > 0:  # inner left/top edge
        w = torch.minimum(w, ((d - zero + 1) / (full - zero + 1)).clamp(0, 1))
    if start + length < total:  # inner right/bottom edge
        w = torch.minimum(w, ((length - 1 - d - zero + 1) / (full - zero + 1)).clamp(0, 1))
    return w


def tiled_logits(
    runner: Runner, images: torch.Tensor, tile: tuple[int, int], overlap: float = 0.25
) -> torch.Tensor:
    """Logits of ``images`` computed tile by tile and stitched with edge weights."""
    if not 0 <= overlap <= MAX_OVERLAP:
        raise FcnlabError(f"--overlap {overlap} must be between 0 and {MAX_OVERLAP}.")
    n, _, height, width = images.shape
    th, tw = min(tile[0], height), min(tile[1], width)
    out = weight = None
    for top in tile_starts(height, th, overlap):
        wy = edge_weights(th, top, tile[0], height, overlap)
        for left in tile_starts(width, tw, overlap):
            wx = edge_weights(tw, left, tile[1], width, overlap)
            logits = runner(images[..., top : top + th, left : left + tw]).float()
            if out is None:
                out = logits.new_zeros(n, logits.shape[1], height, width)
                weight = logits.new_zeros(1, 1, height, width)
            w = (wy[:, None] * wx[None, :]).to(logits.device)
            out[..., top : top + th, left : left + tw] += logits * w
            weight[..., top : top + th, left : left + tw] += w
    return out.div_(weight.clamp_min_(1e-12))  # in place: the image-sized sum is the big one
