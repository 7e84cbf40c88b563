"""The int8 companion of a checkpoint: ``best.int8.onnx`` beside ``best.pt``.

``fcnlab train`` (and ``fcnlab export --format onnx-int8`` of a checkpoint whose data is
reachable) writes it, calibrated on the run's training split, with the val mIoU of fp32 and
int8 and the checkpoint's SHA-256 in its metadata. :func:`find_companion` returns it only
while it still belongs to the checkpoint (same SHA-256) and costs at most
:data:`MAX_MIOU_LOSS` of val mIoU; ``--backend auto`` then measures it with the other backends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fcnlab.errors import FcnlabError

#: The largest val mIoU loss (as a fraction: 0.005 = 0.5 points) an int8 companion may cost.
MAX_MIOU_LOSS = 0.005
#: Pixel agreement with eager fp32 that an int8 backend still needs (its real test is the mIoU).
MIN_INT8_AGREEMENT = 0.95


@dataclass(frozen=True)
class Companion:
    file: Path
    miou_fp32: float
    miou_int8: float
    sha256: str

    @property
    def delta(self) -> float:
        return self.miou_int8 - self.miou_fp32

    def describe(self) -> str:
        return (
            f"int8 companion {self.file.name}: val mIoU {100 * self.miou_int8:.2f} vs fp32 "
            f"{100 * self.miou_fp32:.2f}"
        )


def companion_file(checkpoint_file: Path) -> Path:
    return checkpoint_file.with_suffix(".int8.onnx")


def find_companion(checkpoint_file: Path) -> Companion | None:
    """The checkpoint's int8 companion if it exists, is its own and is accurate enough."""
    file = companion_file(Path(checkpoint_file))
    if not file.is_file():
        return None
    try:
        from fcnlab.export.onnx import read_metadata
        from fcnlab.export.quality import INT8_KEY, file_sha256

        record = json.loads(read_metadata(file).get(INT8_KEY, "null"))
        companion = Companion(
            file, float(record["miou_fp32"]), float(record["miou_int8"]), record["source_sha256"]
        )
    except (ImportError, ValueError, KeyError, TypeError, FcnlabError):
        return None  # no ONNX package, or a file without a quality record
    if companion.sha256 != file_sha256(Path(checkpoint_file)):
        return None  # made from an earlier best.pt
    return companion if companion.delta >= -MAX_MIOU_LOSS else None
