"""predict and serve set PIL's decompression-bomb limit process-wide: restore it per test."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _restore_decode_limit():
    limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        yield
    Image.MAX_IMAGE_PIXELS = limit
