"""Reading images and label masks from disk, with checks that name the bad file.

- :func:`read_image` returns an RGB ``PIL.Image`` whatever the file holds (grayscale, RGBA,
  palette, 16-bit), turned upright by its EXIF orientation; :func:`decode_image_bytes` does
  the same for bytes in memory (uploads), never touching the disk.
- :func:`read_mask` returns an ``HxW`` array of class indices (uint8 when it fits, else int64)
  from an index PNG (mode L/P/I) or, given a colour table, from a colour PNG.
- :func:`check_labels` and :func:`check_sizes` raise :class:`FcnlabError` for label values
  outside the label space and for image/mask size mismatches.
- :func:`index_by_stem` lists a folder's files keyed by stem, for pairing images and masks.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fcnlab.errors import FcnlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
#: What PIL raises for files it cannot identify or decode (truncated, corrupt, too large).
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)
_SEND = "send a PNG, JPEG, BMP, TIFF or WebP file."


def _open(path: Path, what: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()  # decode now so a truncated file fails here, with its name
    except FileNotFoundError:
        raise FcnlabError(f"{what} file {path} does not exist; check the path.") from None
    except DECODE_ERRORS as error:
        raise FcnlabError(
            f"{what} file {path} cannot be read ({error}); replace or remove it."
        ) from None
    return image


def read_image(path: str | Path) -> Image.Image:
    """Decode an image file into an upright RGB image."""
    return _upright_rgb(_open(Path(path), "image"))


def decode_image_bytes(data: bytes, name: str = "upload") -> Image.Image:
    """Decode an image held in memory into an upright RGB image, as :func:`read_image` does.

    Raises :class:`FcnlabError` naming ``name`` when the bytes are not an image PIL can read
    (unknown format, truncated or corrupt data, or a decompression bomb).
    """
    try:
        image = Image.open(BytesIO(data))
        image.load()
        return _upright_rgb(image)
    except UnidentifiedImageError:
        raise FcnlabError(f"{name} is not an image in a known format; {_SEND}") from None
    except DECODE_ERRORS as error:
        raise FcnlabError(f"{name} is a damaged or unreadable image ({error}); {_SEND}") from None


def _upright_rgb(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation and convert any mode to 8-bit RGB (16-bit is rescaled)."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        # PIL would clip 16-bit values to 255; rescale the full range to 8 bits instead.
        values = np.asarray(image, dtype=np.float64)
        peak = 1.0 if image.mode == "F" else 65535.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def read_mask(
    path: str | Path,
    colors: Sequence[Sequence[int]] | None = None,
    ignore_color: Sequence[int] | None = None,
    ignore_index: int = 255,
) -> np.ndarray:
    """Decode a label file into an HxW array of class indices.

    Index images (modes 1, L, P, I;16, I) hold class indices directly. Colour images
    (RGB, RGBA) are mapped through ``colors`` (class i has colour ``colors[i]``); pixels of
    ``ignore_color`` become ``ignore_index``.
    """
    path = Path(path)
    image = _open(path, "mask")
    if image.mode in ("RGB", "RGBA"):
        if colors is None:
            raise FcnlabError(
                f"mask {path} is a colour ({image.mode}) image but no class colours are "
                "known; list them as 'colors' in classes.yaml or save masks as index PNGs."
            )
        rgb = np.array(image.convert("RGB"))
        return map_colors(rgb, colors, ignore_color, ignore_index, path)
    if image.mode == "LA":
        image = image.convert("L")
    if image.mode not in ("1", "L", "P", *_SIXTEEN_BIT_MODES):
        raise FcnlabError(
            f"mask {path} has image mode {image.mode}; save it as a single-channel "
            "index PNG (mode L or P) or an RGB colour PNG."
        )
    mask = np.array(image)  # a writable copy, so torch.from_numpy can share it
    if mask.dtype == np.uint8:
        return mask
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    return mask.astype(np.int64)


def _color_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def map_colors(
    rgb: np.ndarray,
    colors: Sequence[Sequence[int]],
    ignore_color: Sequence[int] | None,
    ignore_index: int,
    path: str | Path = "<array>",
) -> np.ndarray:
    """Map an HxWx3 colour mask to class indices; unknown colours raise, naming the file."""
    table = [tuple(int(v) for v in c) for c in colors]
    values = list(range(len(table)))
    if ignore_color is not None:
        table.append(tuple(int(v) for v in ignore_color))
        values.append(ignore_index)
    table_keys = _color_keys(np.array(table, dtype=np.int32).reshape(-1, 3))
    order = np.argsort(table_keys)
    sorted_keys = table_keys[order]
    keys = _color_keys(rgb)
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    known = sorted_keys[pos] == keys
    if not known.all():
        unknown = np.unique(keys[~known])[:5]
        shown = ", ".join(f"({k >> 16}, {(k >> 8) & 255}, {k & 255})" for k in unknown)
        raise FcnlabError(
            f"mask {path} has colours not in the class table: {shown}; add them to 'colors' "
            "(or set 'ignore_color') in classes.yaml, or fix the mask."
        )
    fits = max(values) <= 255 and min(values) >= 0
    lookup = np.array(values, dtype=np.uint8 if fits else np.int64)[order]
    return lookup[pos]


def bad_label_values(mask: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """The sorted distinct values of ``mask`` that are neither a class nor ``ignore_index``."""
    if mask.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        return present[(present >= num_classes) & (present != ignore_index)]
    wrong = ((mask < 0) | (mask >= num_classes)) & (mask != ignore_index)
    return np.unique(mask[wrong])


def check_labels(mask: np.ndarray, num_classes: int, ignore_index: int, path: str | Path) -> None:
    """Raise unless every value of ``mask`` is a class index or ``ignore_index``."""
    bad = bad_label_values(mask, num_classes, ignore_index)
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10].tolist())
        raise FcnlabError(
            f"mask {path} has label values {shown} outside 0..{num_classes - 1} "
            f"(ignore value {ignore_index}); fix the mask or the class list."
        )


def check_sizes(image: Image.Image, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    """Raise unless the mask has the image's height and width."""
    if mask.shape[:2] != (image.height, image.width):
        mh, mw = mask.shape[:2]
        raise FcnlabError(
            f"mask {mask_path} is {mh}x{mw} (HxW) but image {image_path} is "
            f"{image.height}x{image.width}; re-export the mask at the image's size."
        )


def index_by_stem(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """The entries of ``folder`` with one of ``suffixes``, keyed by stem; duplicate stems raise.

    Entries that are not regular files (folders, broken links, symlink loops) are kept, so
    the datasets report them as problems instead of dropping them silently.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise FcnlabError(f"folder {folder} cannot be listed ({error.strerror}); fix it.") from None
    for path in entries:
        if path.suffix.lower() not in suffixes:
            continue
        if path.stem in found:
            raise FcnlabError(
                f"{found[path.stem].name} and {path.name} in {folder} share the stem "
                f"'{path.stem}', so they cannot be paired by name; rename or remove one."
            )
        found[path.stem] = path
    return found


def read_text_file(path: Path, what: str = "list file") -> str:
    """The text of ``path``; unreadable or non-text files raise, naming it."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise FcnlabError(f"{what} {path} cannot be read ({reason}); fix or replace it.") from None


def read_list_file(path: Path) -> list[str]:
    """The stems listed in a split file, one per line (first token; paths reduced to stems)."""
    stems = []
    for line in read_text_file(path).splitlines():
        tokens = line.split()
        if tokens:
            name = Path(tokens[0])
            has_suffix = name.suffix.lower() in (*IMAGE_SUFFIXES, ".mat")
            stems.append(name.stem if has_suffix or "/" in tokens[0] else tokens[0])
    return stems
