"""Export checkpoints to ONNX (fp32 or int8) and TorchScript, with parity checks.

:func:`export_checkpoint` (and :data:`FORMATS`, :class:`ExportResult`) are imported on first
use, so that :mod:`fcnlab.infer`, which runs exported files with
:mod:`fcnlab.export.runners`, does not load the checkpoint, dataset and evaluation code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fcnlab.export.checkpoint import FORMATS, ExportResult, export_checkpoint

__all__ = ["FORMATS", "ExportResult", "export_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fcnlab.export import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
