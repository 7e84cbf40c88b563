"""A tiny three-class model, saved as a checkpoint and loaded once for all serve tests."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def make_png():
    """``make_png(width, height, mode="RGB")``: a random image of ``mode`` as PNG bytes."""
    return png_bytes


def png_bytes(width: int, height: int, mode: str = "RGB", seed: int = 0) -> bytes:
    """A random image of ``mode`` (RGB, RGBA or L) encoded as PNG."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
