"""The demo server's limits, and how ``fcnlab serve`` derives them from a memory budget.

The budget (``--max-memory-mb``) pays for the uploads being read at once (each held up to
:data:`~fcnlab.serve.upload.UPLOAD_COPIES` times while it is parsed) and for one image's
inference (images are segmented one at a time); the pixel limit is the largest image whose
memory plan (whole or tiled, :mod:`fcnlab.infer.memory`) fits what is left. An explicit
``--max-pixels`` above that is refused, naming the largest the budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from fcnlab.errors import FcnlabError
from fcnlab.infer.memory import MIB, max_pixels_for
from fcnlab.infer.predictor import Predictor
from fcnlab.serve.settings import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_PIXELS,
    DEFAULT_READ_TIMEOUT,
)
from fcnlab.serve.upload import MULTIPART_OVERHEAD, UPLOAD_COPIES


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    #: Bytes one image's inference may use (tiled to fit); None: images run whole.
    max_memory: int | None = None

    def __post_init__(self) -> None:
        for label in ("max_bytes", "max_pixels", "max_concurrent"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FcnlabError(f"{label} must be a positive integer, not {value!r}.")
        if not 0 < self.read_timeout <= 3600:
            raise FcnlabError(
                f"read_timeout must be in (0, 3600] seconds, not {self.read_timeout}."
            )


def upload_bytes(max_bytes: int, max_concurrent: int) -> int:
    """Memory the uploads being read at once may hold."""
    return max_concurrent * UPLOAD_COPIES * (max_bytes + MULTIPART_OVERHEAD)


def limits_for_budget(
    predictor: Predictor,
    budget_mb: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    max_pixels: int | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> Limits:
    """Limits whose uploads and inference fit ``budget_mb`` MiB on top of the loaded model."""
    Limits(max_bytes, 1, max_concurrent, read_timeout)  # checks the arguments first
    uploads = upload_bytes(max_bytes, max_concurrent)
    image_budget = int(budget_mb * MIB) - uploads
    if image_budget < 16 * MIB:
        raise FcnlabError(
            f"--max-memory-mb {budget_mb:g} leaves no room to segment: {max_concurrent} "
            f"concurrent uploads of up to {max_bytes / MIB:.1f} MiB may hold "
            f"{uploads / MIB:.0f} MiB; raise it or lower --max-concurrent or --max-upload-mb."
        )
    allowed = max_pixels_for(predictor, image_budget, overlay=True)
    if max_pixels is not None and max_pixels > allowed:
        raise FcnlabError(
            f"--max-pixels {max_pixels} does not fit --max-memory-mb {budget_mb:g}, which "
            f"allows at most {allowed} pixels; lower --max-pixels or raise --max-memory-mb."
        )
    return Limits(max_bytes, max_pixels or allowed, max_concurrent, read_timeout, image_budget)
