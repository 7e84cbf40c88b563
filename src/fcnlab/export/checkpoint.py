"""``fcnlab export``: a checkpoint to a deployable file, checked against PyTorch before it lands.

The file is written beside its destination under a temporary name, checked, then renamed:
a failed export never leaves a file that looks finished. ``out`` defaults to the checkpoint's
name with the format's suffix beside it; an existing folder as ``out`` receives that name
inside it (``--out exports/`` writes ``exports/best.onnx``).

- ``onnx``: fp32, parity on random inputs of sizes the export never saw (>= 99.9% agreement);
- ``onnx-int8``: statically quantised, calibrated and checked on the given sample images, or
  without ``--calibration`` on images of the checkpoint's own training split (int8 cannot
  match fp32 bit for bit: agreement >= 95% is required, mIoU is the real test); when the
  checkpoint's val split is reachable, the val mIoU of fp32 and int8 is measured and recorded
  in the file (metadata ``fcnlab.int8``), which ``--backend auto`` reads before it uses the file;
- ``torchscript``: a traced module with the model card in its extra files.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from fcnlab.card import ModelCard
from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from fcnlab.errors import FcnlabError
from fcnlab.export.onnx import (
    MIN_AGREEMENT,
    PARITY_SHAPES,
    Parity,
    assert_parity,
    check_parity,
    export_onnx_model,
    export_torchscript_model,
    load_torchscript,
    parity_on,
    write_card,
    write_metadata,
)
from fcnlab.export.quality import INT8_KEY, Int8Quality, dataset_images, int8_quality
from fcnlab.export.runners import ModuleRunner, OnnxRunner
from fcnlab.preprocess import calibration_batch

ExportFormat = Literal["onnx", "onnx-int8", "torchscript"]
#: The formats, in the order of :data:`ExportFormat` (derived from it, not a second list).
FORMATS: tuple[str, ...] = typing.get_args(ExportFormat)
SUFFIXES = {"onnx": ".onnx", "onnx-int8": ".int8.onnx", "torchscript": ".ts"}
MIN_INT8_AGREEMENT = 0.95
#: Training-split images an int8 export is calibrated on when no folder is given.
CALIBRATION_IMAGES = 32


@dataclass
class ExportResult:
    file: Path
    format: str
    parity: list[Parity]
    quality: Int8Quality | None = None  # int8: val mIoU of fp32 and int8, when measurable


def export_checkpoint(
    checkpoint_file: str | Path,
    out: str | Path | None = None,
    fmt: str = "onnx",
    calibration: Sequence[Image.Image] = (),
    shapes: tuple[tuple[int, int, int], ...] = PARITY_SHAPES,
) -> ExportResult:
    if fmt not in FORMATS:
        raise FcnlabError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    checkpoint_file = Path(checkpoint_file)
    out = destination(checkpoint_file, out, fmt)
    checkpoint = load_checkpoint(checkpoint_file)
    card = ModelCard.from_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, f"checkpoint {checkpoint_file}").eval()
    if fmt == "onnx-int8" and not calibration:
        calibration = _own_calibration(checkpoint)
    tmp = _temporary_beside(out)
    quality = None
    try:
        parity = _write(model, card, fmt, tmp, calibration, shapes)
        if fmt == "onnx-int8":
            quality = _measure_int8(checkpoint, checkpoint_file, model, tmp, len(calibration))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, fmt, parity, quality)


def _own_calibration(checkpoint: dict) -> list[Image.Image]:
    try:
        return dataset_images(checkpoint, CALIBRATION_IMAGES)
    except FcnlabError as error:
        raise FcnlabError(
            f"onnx-int8 needs sample images: pass --calibration DIR (the checkpoint's own "
            f"training data is not reachable here: {str(error).rstrip('.')})."
        ) from None


def _measure_int8(checkpoint, checkpoint_file, model, int8_file, count) -> Int8Quality | None:
    """The val mIoU of fp32 and int8, written into the int8 file; None without val data."""
    try:
        quality = int8_quality(checkpoint, checkpoint_file, model, OnnxRunner(int8_file), count)
    except FcnlabError:
        return None  # the val split is not reachable here: the file carries no quality
    write_metadata(int8_file, INT8_KEY, json.dumps(quality.as_dict()))
    return quality


def destination(checkpoint_file: Path, out: str | Path | None, fmt: str) -> Path:
    """``out``, or the checkpoint's name with the format's suffix beside it or inside ``out``
    when that is an existing folder."""
    name = checkpoint_file.with_suffix(SUFFIXES[fmt]).name
    if out is None:
        return checkpoint_file.with_name(name)
    out = Path(out)
    return out / name if out.is_dir() else out


def _write(model, card, fmt, tmp, calibration, shapes) -> list[Parity]:
    if fmt == "torchscript":
        export_torchscript_model(model, tmp, card)
        runner = ModuleRunner(load_torchscript(tmp))
        rows = check_parity(model, runner, card, shapes)
        assert_parity(rows, tmp, MIN_AGREEMENT)
        return rows
    export_onnx_model(model, tmp)
    if fmt == "onnx":
        write_card(tmp, card)
        rows = check_parity(model, OnnxRunner(tmp), card, shapes)
        assert_parity(rows, tmp, MIN_AGREEMENT)
        return rows
    from fcnlab.export.quantize import quantize_onnx

    batches = [calibration_batch(card, image) for image in calibration]
    if not batches:
        raise FcnlabError("onnx-int8 needs sample images: pass --calibration DIR.")
    fp32 = tmp.with_name(tmp.name + ".fp32")
    try:
        os.replace(tmp, fp32)
        quantize_onnx(fp32, tmp, batches)
    finally:
        fp32.unlink(missing_ok=True)
    write_card(tmp, card)
    rows = parity_on(model, OnnxRunner(tmp), batches[:4])
    assert_parity(rows, tmp, MIN_INT8_AGREEMENT)
    return rows


def _temporary_beside(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(f".{out.name}.partial")
        probe.touch()
    except OSError as error:
        raise FcnlabError(f"cannot write {out} ({error.strerror}); choose another --out.") from None
    return probe
