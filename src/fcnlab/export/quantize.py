"""Static int8 quantisation of an ONNX model with ONNX Runtime, calibrated on real images.

QDQ format, per-channel signed int8 weights, unsigned int8 activations (the u8s8 pair that
AVX512-VNNI and AMX-INT8 run fastest), MinMax calibration over the given batches.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from fcnlab.errors import FcnlabError
from fcnlab.export.onnx import INPUT


class _Batches:
    """ONNX Runtime's CalibrationDataReader protocol over a list of tensors."""

    def __init__(self, batches: Sequence[torch.Tensor]) -> None:
        self._items = iter([{INPUT: b.detach().float().cpu().numpy()} for b in batches])

    def get_next(self):
        return next(self._items, None)


def quantize_onnx(source: str | Path, out: str | Path, calibration: Sequence[torch.Tensor]) -> Path:
    """Write an int8 copy of ``source`` calibrated on ``calibration`` (normalised batches)."""
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise FcnlabError(
            "int8 export needs ONNX Runtime; install it with: pip install 'fcnlab[onnx]'."
        ) from None
    if not calibration:
        raise FcnlabError("int8 quantisation needs at least one calibration image.")
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    return out
