"""Image and mask decoding, and the checks that name bad files."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from fcnlab.data.decode import (
    check_labels,
    check_sizes,
    decode_image_bytes,
    index_by_stem,
    map_colors,
    read_image,
    read_mask,
)
from fcnlab.errors import FcnlabError


def test_grayscale_and_rgba_become_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    image = read_image(tmp_path / "gray.png")
    assert image.mode == "RGB"
    assert (np.array(image) == gray[..., None]).all()

    rgba = np.zeros((3, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 0  # fully transparent: the colour is still what we keep
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert (np.array(read_image(tmp_path / "rgba.png")) == (10, 20, 30)).all()


def test_sixteen_bit_grayscale_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    pixels = np.array(read_image(tmp_path / "deep.png"))
    assert pixels.shape == (1, 3, 3)
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_palette_image_with_transparency(tmp_path):
    image = Image.new("P", (2, 2))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    assert (np.array(read_image(tmp_path / "p.png")) == (255, 0, 0)).all()


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)  # 4 high, 6 wide
    pixels[0, 0] = (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    upright = np.array(read_image(tmp_path / "rotated.png"))
    assert upright.shape == (6, 4, 3)
    assert upright[0, 3].tolist() == [255, 255, 255]  # top-left went to top-right


def test_corrupt_truncated_and_missing_images_name_the_file(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(FcnlabError, match=r"image file .*junk\.jpg cannot be read"):
        read_image(tmp_path / "junk.jpg")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FcnlabError, match=r"cut\.png cannot be read"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(FcnlabError, match=r"gone\.png does not exist"):
        read_image(tmp_path / "gone.png")


def test_decode_image_bytes_matches_read_image(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    Image.fromarray(rotated).save(tmp_path / "rotated.png", exif=exif)
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.zeros((3, 4, 4), dtype=np.uint8), "RGBA").save(tmp_path / "rgba.png")
    for name in ("rotated.png", "deep.png", "rgba.png"):
        decoded = decode_image_bytes((tmp_path / name).read_bytes(), name)
        assert decoded.mode == "RGB"
        assert np.array_equal(np.array(decoded), np.array(read_image(tmp_path / name)))


def test_decode_image_bytes_names_bad_data():
    with pytest.raises(FcnlabError, match=r"^notes\.txt is not an image in a known format"):
        decode_image_bytes(b"plain text", "notes.txt")
    buffer = BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="PNG")
    cut = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    with pytest.raises(FcnlabError, match=r"^cut\.png is a damaged or unreadable image"):
        decode_image_bytes(cut, "cut.png")


def test_index_masks_keep_their_values(tmp_path, files):
    values = files.grid()
    files.mask(tmp_path / "l.png", values)
    files.mask(tmp_path / "p.png", values, palette=True)
    for name in ("l.png", "p.png"):
        mask = read_mask(tmp_path / name)
        assert mask.dtype == np.uint8
        assert (mask == values).all()
    Image.fromarray(np.array([[0, 300]], dtype=np.uint16)).save(tmp_path / "wide.png")
    wide = read_mask(tmp_path / "wide.png")
    assert wide.dtype == np.int64
    assert wide.tolist() == [[0, 300]]


def test_colour_masks_map_through_the_table(tmp_path, files):
    pixels = np.array([[[0, 0, 0], [10, 20, 30], [255, 255, 255]]], dtype=np.uint8)
    files.rgb(tmp_path / "c.png", pixels)
    colors = [(0, 0, 0), (10, 20, 30)]
    mask = read_mask(tmp_path / "c.png", colors, ignore_color=(255, 255, 255), ignore_index=99)
    assert mask.tolist() == [[0, 1, 99]]
    with pytest.raises(FcnlabError, match=r"c\.png has colours not in the class table: "):
        read_mask(tmp_path / "c.png", colors)
    with pytest.raises(FcnlabError, match=r"\(255, 255, 255\)"):
        map_colors(pixels, colors, None, 255, "c.png")
    with pytest.raises(FcnlabError, match="no class colours are known"):
        read_mask(tmp_path / "c.png")


def test_label_and_size_checks_name_file_and_values(tmp_path):
    mask = np.array([[0, 1, 2], [255, 7, 40]], dtype=np.uint8)
    with pytest.raises(FcnlabError, match=r"m\.png has label values 7, 40 outside 0\.\.2"):
        check_labels(mask, 3, 255, tmp_path / "m.png")
    check_labels(mask.clip(0, 2), 3, 255, "fine.png")
    wide = np.array([[0, -1, 3]], dtype=np.int64)
    with pytest.raises(FcnlabError, match="label values -1, 3 "):
        check_labels(wide, 3, 255, "w.png")
    image = Image.new("RGB", (5, 4))
    with pytest.raises(FcnlabError, match=r"mask m\.png is 2x3 \(HxW\) but image i\.jpg is 4x5"):
        check_sizes(image, mask, "i.jpg", "m.png")


def test_index_by_stem_refuses_ambiguous_stems(tmp_path, files):
    files.image(tmp_path / "a.png")
    files.image(tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    assert sorted(index_by_stem(tmp_path)) == ["a", "b"]
    files.image(tmp_path / "a.jpg")
    with pytest.raises(FcnlabError, match="share the stem 'a'"):
        index_by_stem(tmp_path)
