"""Memory-bounded inference: how much memory one image needs, and whether to run it whole,
tiled or not at all.

The size comes from the file's header (:func:`image_size`), before anything is decoded. The
peak a :class:`~fcnlab.infer.predictor.Predictor` needs for a ``W x H`` image is estimated by
:func:`estimate_bytes` as the largest of the pipeline's phases, on top of the decoded image
itself (P = W*H pixels, C classes, Pv = pixels of one TTA view at the working scale):

- decoding: the file's own mode (1-8 bytes/px) and its RGB conversion (3 B/px);
- the input batch: a uint8 copy and its stack (6 B/px) and the float batch (12 B/px);
- each TTA view (the largest counts): the float input (12 P) and the summed probabilities
  (4C P); the view's resized and flipped copies (12 Pv each); what the runner holds per pixel
  it is given, the whole view or one tile: its channels-last copy (12, bf16 6 more), the
  measured activations and the logits (8C: the model's output and its float copy; tiles add
  their slice, weights and weighted logits); when tiled, the stitched sum and weights
  (4C+4 per Pv); logits flipped back (4C Pv), resized to the image and their softmax (4C P
  each);
- the outputs: probabilities, their channels-last copy for the arg-max (8C P), the arg-max
  (8 P) and the mask (1 P); ``--probs`` adds a float32 and a float16 copy (6C P); the overlay
  blends in float32 (39 P).

The activation cost is measured once per predictor (:mod:`fcnlab.infer.activations`: the peak
of live tensors in one forward at a small probe size, times a safety factor of 1.25); the
total is multiplied by :data:`SAFETY` for allocator slack. ``tests/infer/test_memory.py``
checks the estimate against a subprocess's peak RSS (VmHWM): it covers it, by 1.2-2x.

:func:`plan_image` then runs the image whole when that fits ``limit``, else tiled with the
largest square tile that fits, else refuses with an :class:`FcnlabError` naming the image, its
size, the estimate and the limit.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from fcnlab.data.decode import DECODE_ERRORS
from fcnlab.errors import FcnlabError
from fcnlab.infer.activations import activation_cost, read_status
from fcnlab.infer.tiling import MIN_TILE, tile_starts

if TYPE_CHECKING:
    from fcnlab.infer.predictor import Predictor

SAFETY = 1.1
#: Most tiles one image (one TTA view) may be cut into.
MAX_TILES = 4096
#: Automatic tile sides, largest first.
TILE_SIDES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, MIN_TILE)
MIB = 2**20
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4, "YCbCr": 3}


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    mode: str

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def mode_bytes(self) -> int:
        """Bytes per pixel of the decoded file before RGB conversion (8 for 16/32-bit modes)."""
        return _MODE_BYTES.get(self.mode, 8)


@dataclass(frozen=True)
class Plan:
    name: str
    header: ImageHeader
    estimate: int  # bytes
    limit: int  # bytes
    tile: tuple[int, int] | None  # None: the image runs whole

    def describe(self) -> str:
        how = "whole" if self.tile is None else f"tiled {self.tile[0]}x{self.tile[1]}"
        return (
            f"{self.name} ({self.header.width}x{self.header.height}) runs {how}: about "
            f"{self.estimate / MIB:.0f} MiB of the {self.limit / MIB:.0f} MiB allowed."
        )


def set_decode_limit(limit: int) -> None:
    """Make PIL's decompression-bomb check agree with a memory limit of ``limit`` bytes.

    PIL refuses, when it reads the header, images over twice ``Image.MAX_IMAGE_PIXELS``:
    set to ``limit / 8``, that is every image whose decoded RGBA pixels alone would fill the
    limit. Smaller ones reach :func:`plan_image`, which tiles or refuses them with their size
    and estimate, so PIL's warning below its hard limit is silenced. Process-wide.
    """
    Image.MAX_IMAGE_PIXELS = max(1, int(limit) // 8)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def image_size(source: str | Path | bytes, name: str | None = None) -> ImageHeader:
    """Width, height and mode from the image's header, without decoding its pixels."""
    name = name or (str(source) if not isinstance(source, bytes) else "upload")
    stream = BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with Image.open(stream) as image:
            return ImageHeader(image.width, image.height, image.mode)
    except FileNotFoundError:
        raise FcnlabError(f"image file {name} does not exist; check the path.") from None
    except Image.DecompressionBombError as error:
        raise FcnlabError(
            f"{name} has too many pixels ({_bomb_pixels(error)}); resize it or raise "
            "--max-memory-mb."
        ) from None
    except UnidentifiedImageError:
        raise FcnlabError(f"{name} is not an image in a known format.") from None
    except DECODE_ERRORS as error:
        raise FcnlabError(f"{name} cannot be read ({error}); replace or remove it.") from None


def _bomb_pixels(error: Exception) -> str:
    found = re.search(r"\((\d+) pixels\).*?(\d+) pixels", str(error))
    if not found:
        return str(error)
    return f"{int(found[1])} pixels, over the decoder's limit of {int(found[2])}"


def _views(predictor: Predictor, header: ImageHeader) -> list[tuple[int, int, bool]]:
    """(height, width, flipped) of each TTA view the runner sees."""
    scale, tta = predictor.card.scale, predictor.tta
    flips = (False, True) if tta.flip else (False,)
    return [
        (max(1, round(header.height * scale * s)), max(1, round(header.width * scale * s)), f)
        for s in tta.scales
        for f in flips
    ]


def estimate_bytes(
    predictor: Predictor,
    header: ImageHeader,
    tile: tuple[int, int] | None = None,
    keep_probs: bool = False,
    overlay: bool = False,
) -> int:
    """The peak bytes one image needs (see the module docstring for each term)."""
    p, c = header.pixels, predictor.card.num_classes
    per_px = activation_cost(predictor).bytes_per_pixel
    decode = p * header.mode_bytes
    batch = 6 * p + 12 * p
    view_peak = max(_view_bytes(predictor, v, tile, per_px, p) for v in _views(predictor, header))
    views = 12 * p + 4 * c * p + view_peak
    outputs = 8 * c * p + 9 * p + (6 * c * p if keep_probs else 0) + (39 * p if overlay else 0)
    return int(SAFETY * (3 * p + max(decode, batch, views, outputs)))


def _view_bytes(predictor, view, tile, per_px: float, p: int) -> float:
    height, width, flipped = view
    pv, c = height * width, predictor.card.num_classes
    copies = 12 * pv * (flipped + (pv != p))  # the view's resized and flipped inputs
    runner_copy = 12 + (6 if _is_bf16(predictor) else 0)  # channels-last (and bf16) input
    if tile is None:
        model = (runner_copy + per_px + 8 * c) * pv
    else:
        th, tw = min(tile[0], height), min(tile[1], width)
        # one tile's slice, copies, activations and weighted logits; the stitched sum, weights
        model = (12 + runner_copy + per_px + 12 * c + 8) * th * tw + (4 * c + 4) * pv
    return copies + model + 4 * c * pv * flipped + 8 * c * p


def _is_bf16(predictor: Predictor) -> bool:
    return bool(getattr(predictor.runner, "bf16", False))


def tile_count(predictor: Predictor, header: ImageHeader, tile: tuple[int, int]) -> int:
    """Tiles of the TTA view cut into the most."""
    counts = [
        len(tile_starts(h, min(tile[0], h), predictor.overlap))
        * len(tile_starts(w, min(tile[1], w), predictor.overlap))
        for h, w, _ in _views(predictor, header)
    ]
    return max(counts)


def plan_image(
    predictor: Predictor,
    header: ImageHeader,
    limit: int,
    name: str,
    keep_probs: bool = False,
    overlay: bool = False,
) -> Plan:
    """Whole when it fits ``limit`` (bytes), else tiled to fit, else an FcnlabError."""
    args = (keep_probs, overlay)
    if predictor.tile is None:
        whole = estimate_bytes(predictor, header, None, *args)
        if whole <= limit:
            return Plan(name, header, whole, limit, None)
    sides = [s for s in TILE_SIDES if s <= max(header.width, header.height, MIN_TILE)]
    tiles = [(s, s) for s in sides]
    if predictor.tile is not None:  # the user's tile first, then smaller automatic ones
        tiles = [predictor.tile] + [t for t in tiles if t[0] * t[1] < _area(predictor.tile)]
    smallest = None
    for tile in tiles:
        estimate = estimate_bytes(predictor, header, tile, *args)
        smallest = estimate
        if estimate <= limit:
            _check_tile_count(predictor, header, tile, name)
            return Plan(name, header, estimate, limit, tile)
    raise FcnlabError(
        f"{name} is {header.width}x{header.height} and needs about {smallest / MIB:.0f} MiB "
        f"even tiled, over the limit of {limit / MIB:.0f} MiB; resize it or raise "
        "--max-memory-mb."
    )


def _area(tile: tuple[int, int]) -> int:
    return tile[0] * tile[1]


def _check_tile_count(predictor, header: ImageHeader, tile: tuple[int, int], name: str) -> None:
    count = tile_count(predictor, header, tile)
    if count > MAX_TILES:
        raise FcnlabError(
            f"{name} ({header.width}x{header.height}) would be cut into {count} tiles of "
            f"{tile[0]}x{tile[1]}, more than {MAX_TILES}; use a larger --tile or resize it."
        )


def max_pixels_for(predictor: Predictor, limit: int, overlay: bool = False) -> int:
    """The largest pixel count (square image) whose plan fits ``limit`` bytes, tiled or not."""
    low, high = 0, 1 << 36
    while high - low > max(1, low // 1000):
        mid = (low + high) // 2
        side = max(1, int(mid**0.5))
        if _fits(predictor, ImageHeader(side, side, "RGBA"), limit, overlay):
            low = mid
        else:
            high = mid
    return max(low, 1)


def _fits(predictor: Predictor, header: ImageHeader, limit: int, overlay: bool) -> bool:
    try:
        plan_image(predictor, header, limit, "probe", overlay=overlay)
    except FcnlabError:
        return False
    return True


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, or the RuntimeError an allocator raises when it cannot get memory."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    markers = ("out of memory", "can't allocate", "cannot allocate", "failed to allocate")
    return isinstance(error, RuntimeError) and any(m in text for m in markers)


def available_memory() -> int:
    """Bytes this process can still get: the least of MemAvailable, the headroom under its
    cgroup's memory limit and under its address-space limit (``ulimit -v``); 4 GiB where none
    can be read."""
    candidates = [_meminfo_available(), _cgroup_headroom(), _address_space_headroom()]
    known = [c for c in candidates if c is not None]
    return max(0, min(known)) if known else 4 * 2**30


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


#: (limit, usage) files of cgroup v2 and v1.
_CGROUP_FILES = (
    ("memory.max", "memory.current"),
    ("memory.limit_in_bytes", "memory.usage_in_bytes"),
)


def _cgroup_headroom() -> int | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        root = Path("/sys/fs/cgroup") if controllers == "" else Path("/sys/fs/cgroup/memory")
        if controllers not in ("", "memory"):
            continue
        for folder in (root / path.lstrip("/"), root):
            for limit_file, usage_file in _CGROUP_FILES:
                try:
                    limit = (folder / limit_file).read_text().strip()
                    usage = int((folder / usage_file).read_text())
                except (OSError, ValueError):
                    continue
                if limit.isdigit() and int(limit) < 2**60:
                    return int(limit) - usage
    return None


def _address_space_headroom() -> int | None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        return soft - read_status("VmSize")
    except OSError:
        return None
