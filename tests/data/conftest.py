"""Tiny on-disk fixtures for the data tests: images, masks and dataset layouts in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcnlab.data.classes import VOC_INFO


class Files:
    """Writers for test images and masks; every writer creates missing parent folders."""

    @staticmethod
    def image(path: Path, height: int = 6, width: int = 8, seed: int = 0) -> np.ndarray:
        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "RGB").save(path)
        return pixels

    @staticmethod
    def mask(path: Path, values: np.ndarray, palette: bool = False) -> np.ndarray:
        values = np.asarray(values, dtype=np.uint8)
        image = Image.fromarray(values, "L")
        if palette:
            image = image.convert("P")
            image.putpalette([c for color in VOC_INFO.palette for c in color])
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return values

    @staticmethod
    def rgb(path: Path, pixels: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB").save(path)

    @staticmethod
    def grid(height: int = 6, width: int = 8, labels: tuple[int, ...] = (0, 1, 15, 255)):
        """A mask whose columns cycle through ``labels``."""
        row = np.array([labels[x % len(labels)] for x in range(width)], dtype=np.uint8)
        return np.tile(row, (height, 1))

    @staticmethod
    def text(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def files() -> type[Files]:
    return Files


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """VOCdevkit/VOC2012 with train = a, b and val = c; palette PNG labels."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for seed, stem in enumerate(("a", "b", "c")):
        Files.image(voc / "JPEGImages" / f"{stem}.jpg", seed=seed)
        Files.mask(voc / "SegmentationClass" / f"{stem}.png", Files.grid(), palette=True)
    lists = voc / "ImageSets" / "Segmentation"
    Files.text(lists / "train.txt", ["a", "b"])
    Files.text(lists / "val.txt", ["c"])
    Files.text(lists / "trainval.txt", ["a", "b", "c"])
    return tmp_path
