"""A generated dataset of coloured shapes on textured backgrounds: no files, same every run.

Sample ``i`` of split ``s`` is drawn from a random generator seeded by ``(seed, s, i)``, so
it is identical on every machine, process and DataLoader worker. Class 0 is the background
(a desaturated wave texture); classes 1.. are shapes (circle, square, triangle, diamond,
ring, cross, ellipse), each in its own saturated colour with per-shape colour jitter and
pixel noise, 2-5 shapes per image, later shapes drawn over earlier ones. Colour and shape
make the classes easy for a small CNN (>= 0.9 mIoU), so the whole pipeline can be exercised
offline in minutes. No pixel is ignored; ``ignore_index`` is 255. The splits are ``train``,
``val`` and ``test``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from fcnlab.data.datasets.base import SegmentationDataset, Transform
from fcnlab.errors import FcnlabError
from fcnlab.labels import LabelSpace

SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross", "ellipse")
SHAPE_COLORS = (
    (220, 40, 40), (40, 190, 60), (40, 70, 220), (235, 205, 30), (200, 50, 210),
    (30, 205, 215), (245, 130, 20),
)  # fmt: skip
MAX_CLASSES = len(SHAPES) + 1
#: The splits; each draws its own samples (``train`` 64 by default, the others 16).
SPLITS = ("train", "val", "test")


def synthetic_info(num_classes: int = 4) -> LabelSpace:
    """The label space of :class:`SyntheticShapes` with ``num_classes`` (background included)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise FcnlabError(
            f"synthetic num_classes is {num_classes}; choose 2..{MAX_CLASSES} "
            "(background plus up to 7 shapes)."
        )
    return LabelSpace(
        name="synthetic",
        classes=("background", *SHAPES[: num_classes - 1]),
        palette=((0, 0, 0), *SHAPE_COLORS[: num_classes - 1]),
        ignore_index=255,
    )


class SyntheticShapes(SegmentationDataset):
    """Deterministic shapes; ``root`` and ``skip_missing`` are accepted and unused."""

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transform: Transform | None = None,
        *,
        num_classes: int = 4,
        size: tuple[int, int] = (96, 128),
        length: int | None = None,
        seed: int = 0,
        skip_missing: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise FcnlabError(
                f"synthetic has no split '{split}'; choose one of {', '.join(SPLITS)}."
            )
        height, width = size
        if height < 16 or width < 16:
            raise FcnlabError(f"synthetic size {tuple(size)} is too small; use at least (16, 16).")
        if length is None:
            length = 64 if split == "train" else 16
        if length < 1:
            raise FcnlabError(f"synthetic length is {length}; it must be at least 1.")
        if seed < 0:
            raise FcnlabError(f"synthetic seed is {seed}; it must be 0 or more.")
        self.info = synthetic_info(num_classes)
        self.split = split
        self.size = (int(height), int(width))
        self.seed = seed
        self.transform = transform
        self.names = [f"{split}_{i:05d}" for i in range(length)]
        self.missing = []

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic samples")
        rng = np.random.default_rng([self.seed, zlib.crc32(self.split.encode()), index])
        image, mask = render_shapes(rng, self.info.num_classes, *self.size)
        return Image.fromarray(image, "RGB"), mask

    def __repr__(self) -> str:
        return f"SyntheticShapes(split={self.split!r}, size={len(self)}, image={self.size})"


def render_shapes(
    rng: np.random.Generator, num_classes: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One uint8 HxWx3 image and its uint8 HxW mask."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frequency = rng.uniform(0.05, 0.25, size=2)
    wave = 25.0 * np.sin(frequency[0] * xx + frequency[1] * yy + rng.uniform(0, 2 * np.pi))
    gray = rng.uniform(95, 145) + wave
    image = gray[..., None] + rng.uniform(-12, 12, size=3).astype(np.float32)
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        label = int(rng.integers(1, num_classes))
        radius = rng.uniform(0.1, 0.25) * min(height, width)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        region = shape_region(SHAPES[label - 1], yy - cy, xx - cx, radius)
        image[region] = np.array(SHAPE_COLORS[label - 1]) + rng.uniform(-20, 20, size=3)
        mask[region] = label
    image += rng.normal(0.0, 10.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def shape_region(shape: str, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of ``shape`` of size ``r`` centred where ``dy == dx == 0``."""
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    if shape == "triangle":  # apex up, base below the centre
        depth = (dy + r) / (1.7 * r)
        return (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * r)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= r
    if shape == "ring":
        distance = dy**2 + dx**2
        return (distance <= r**2) & (distance >= (0.55 * r) ** 2)
    if shape == "cross":
        arm = r / 3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    return (dx / r) ** 2 + (dy / (0.55 * r)) ** 2 <= 1  # ellipse
