"""Property tests: whatever bytes a file or an upload holds, decoding ends in FcnlabError or data.

Random bytes, and valid PNG/JPEG/BMP/TIFF files with bytes flipped, cut off or spliced in, go
through ``decode_image_bytes``, ``read_image``, ``read_mask`` and ``check_labels``; nothing
but :class:`FcnlabError` may come out, and what does decode has the documented form.
"""

from __future__ import annotations

import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fcnlab.data.decode import check_labels, decode_image_bytes, read_image, read_mask
from fcnlab.errors import FcnlabError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run, so a failure reproduces
    database=None,  # and no .hypothesis folder in the checkout
)
COLORS = [(0, 0, 0), (200, 0, 0), (0, 0, 200)]


def _encoded(mode: str, fmt: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 3, (12, 10, 3), dtype=np.uint8)
    pixels = np.array(COLORS, dtype=np.uint8)[pixels[..., 0]]  # colours from the class table
    image = Image.fromarray(pixels, "RGB")
    image = image.convert(mode) if mode != "P" else image.quantize(4)
    buffer = BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


VALID = [
    _encoded(mode, fmt)
    for mode, fmt in [
        ("RGB", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"),
        ("L", "JPEG"), ("RGB", "BMP"), ("P", "BMP"), ("RGB", "TIFF"),
    ]
]  # fmt: skip


@st.composite
def damaged(draw) -> bytes:
    """A valid file with one to three flips, cuts or splices."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "donor"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # a piece of another valid file, as a botched concatenation leaves
            donor = draw(st.sampled_from(VALID))
            start = draw(st.integers(0, len(donor) - 1))
            data[at : at + draw(st.integers(0, 64))] = donor[start : start + 64]
    return bytes(data)


ANY_BYTES = st.one_of(st.binary(max_size=512), damaged())


def _quietly(function, *args):
    """Call ``function``; only FcnlabError may escape (PIL's warnings are not errors here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return function(*args)
        except FcnlabError as error:
            assert str(error).strip() and "\n" not in str(error)
            return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_valid_files_decode():
    for data in VALID:
        assert decode_image_bytes(data).mode == "RGB"


@FUZZ
@given(data=ANY_BYTES)
def test_decoding_bytes_gives_rgb_or_fcnlab_error(data):
    image = _quietly(decode_image_bytes, data)
    if image is not None:
        assert image.mode == "RGB" and image.width >= 1 and image.height >= 1


@FUZZ
@given(data=ANY_BYTES)
def test_reading_files_gives_rgb_masks_or_fcnlab_error(scratch, data):
    path = scratch / "sample.png"
    path.write_bytes(data)
    image = _quietly(read_image, path)
    if image is not None:
        assert image.mode == "RGB"
    for colors in (None, COLORS):
        mask = _quietly(read_mask, path, colors, (255, 255, 255))
        if mask is not None:
            assert mask.ndim == 2 and mask.dtype in (np.uint8, np.int64)
            _quietly(check_labels, mask, 3, 255, path)


@FUZZ
@given(
    mask=st.lists(st.integers(-300, 70000), min_size=1, max_size=64),
    dtype=st.sampled_from([np.uint8, np.int64, np.int32]),
    num_classes=st.integers(1, 300),
    ignore_index=st.integers(-1, 300),
)
def test_check_labels_refuses_exactly_the_values_outside_the_label_space(
    mask, dtype, num_classes, ignore_index
):
    values = np.array(mask).astype(dtype).reshape(1, -1)
    bad = [v for v in values.ravel().tolist() if not 0 <= v < num_classes and v != ignore_index]
    if bad:
        with pytest.raises(FcnlabError, match=f"label values {min(bad)}"):
            check_labels(values, num_classes, ignore_index, "m.png")
    else:
        check_labels(values, num_classes, ignore_index, "m.png")
