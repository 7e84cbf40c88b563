"""Execution backends: the ways one model can run, behind one call, ``runner(x) -> logits``.

A runner takes a normalised ``N x 3 x H x W`` float batch and returns float32 logits of the
same size; its ``backend`` attribute names how it runs. Backends (``fcnlab bench --backend``,
``fcnlab predict --backend``; the names are the :data:`Backend` type):

==============  ===============================================================================
eager           the model as trained, fp32, NCHW: the reference every other backend is checked by
channels_last   BatchNorm folded, fp32, NHWC memory layout (oneDNN's preferred layout)
bf16            BatchNorm folded, NHWC, bf16 weights + autocast (AMX on CPUs; GPUs)
compile         BatchNorm folded, NHWC, fp32, ``torch.compile`` (inductor, freezing)
compile-bf16    as compile, under bf16 autocast
onnx            exported to ONNX, run by ONNX Runtime, fp32
onnx-int8       ONNX statically quantised to int8 (QDQ), calibrated on sample images
openvino        the same ONNX file run by OpenVINO (``pip install 'fcnlab[openvino]'``), its
                default precision: bf16 on AMX/AVX512-BF16 CPUs, fp32 elsewhere
openvino-int8   the int8 QDQ file run by OpenVINO
==============  ===============================================================================

``auto`` (the default of predict and serve) measures which of these is fastest here, for
this model and input size, among those that agree with eager (:mod:`fcnlab.infer.autotune`);
``rule`` skips the measurement: bf16 where bf16 is native, else channels_last. What
``--backend`` accepts is the :data:`BackendChoice` type, checked by :func:`check_backend`.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.export.runners import OnnxRunner
from fcnlab.hardware import bf16_is_native, isa_cap
from fcnlab.infer.autotune import AutoRunner, autotune_enabled, skipped_backends
from fcnlab.infer.fold import fold_batchnorm
from fcnlab.infer.openvino_runner import OpenVinoRunner

#: The backends that run the model in PyTorch.
TorchBackend = Literal["eager", "channels_last", "bf16", "compile", "compile-bf16"]
#: The backends that run an exported ONNX file of the model.
OnnxBackend = Literal["onnx", "onnx-int8", "openvino", "openvino-int8"]
#: A backend: how a runner runs (its ``backend`` attribute).
Backend = Literal[TorchBackend, OnnxBackend]
#: What ``--backend`` accepts: a backend, or how to pick one (``auto``/``best``: measured,
#: ``rule``: the capability rule).
BackendChoice = Literal["auto", "best", "rule", Backend]

#: Every backend, in the order of :data:`Backend` (derived from it, not a second list).
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
TORCH_BACKENDS: tuple[str, ...] = typing.get_args(TorchBackend)

Runner = Callable[[torch.Tensor], torch.Tensor]


def check_backend(name: str, choices: object = BackendChoice) -> str:
    """``name`` when the ``Literal`` type ``choices`` holds it, else one sentence naming them."""
    names = typing.get_args(choices)
    if name not in names:
        raise FcnlabError(f"unknown backend {name!r}; choose one of: {', '.join(names)}.")
    return name


def bf16_is_fast(device: torch.device | str = "cpu") -> bool:
    """bf16 pays off where it is native: bf16 GPUs, CPUs with AMX or AVX512-BF16 units."""
    return bf16_is_native(device)


def rule_backend(device: torch.device | str = "cpu") -> str:
    """The capability rule: bf16 + channels_last where bf16 is native, else fp32
    channels_last (from the measurements in docs/benchmarks.md)."""
    return "bf16" if bf16_is_native(device) else "channels_last"


def resolve_backend(backend: str, device: torch.device | str = "cpu") -> str:
    """A backend name for ``backend``: ``auto``/``best`` stay ``auto`` (measured, see
    :mod:`fcnlab.infer.autotune`) unless ``FCNLAB_AUTOTUNE=0``; ``rule`` is
    :func:`rule_backend`."""
    check_backend(backend)
    if backend in ("auto", "best"):
        return "auto" if autotune_enabled() else rule_backend(device)
    return rule_backend(device) if backend == "rule" else backend


class TorchRunner:
    """Runs an ``nn.Module`` on one of the torch backends. Safe to share across threads."""

    def __init__(self, model: nn.Module, backend: str = "eager", device: str = "cpu") -> None:
        if backend not in TORCH_BACKENDS:
            raise FcnlabError(
                f"{backend!r} is not a torch backend; choose one of {TORCH_BACKENDS}."
            )
        self.backend, self.device = backend, torch.device(device)
        model = model.eval().to(self.device)
        self.memory_format = torch.contiguous_format
        if backend != "eager":
            model = fold_batchnorm(model).to(memory_format=torch.channels_last)
            self.memory_format = torch.channels_last
        if backend == "bf16":
            # Weights stored in bf16: autocast would otherwise cast every weight on every
            # call (a quarter of the run time of DeepLabv3+ MobileNetV2, see op_profile.py).
            model = model.to(torch.bfloat16)
        if backend.startswith("compile"):
            torch._inductor.config.freezing = True
            model = torch.compile(model, dynamic=False)
        self.model = model
        self.bf16 = backend in ("bf16", "compile-bf16")
        # Compiled graphs are (re)built lazily; one caller at a time keeps that safe.
        self._lock = threading.Lock() if backend.startswith("compile") else contextlib.nullcontext()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, memory_format=self.memory_format)
        cast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.bf16
            else contextlib.nullcontext()
        )
        with self._lock, cast:
            out = self.model(x)
        if isinstance(out, dict):
            out = out["out"]
        return out.float().contiguous()


def make_runner(
    model: nn.Module,
    backend: str = "eager",
    device: str = "cpu",
    calibration: Sequence[torch.Tensor] | None = None,
    workdir: str | Path | None = None,
    report: Callable[[str], None] | None = None,
    int8_file: Path | None = None,
) -> Runner:
    """A runner for ``model`` on ``backend``; ONNX backends export to ``workdir`` (kept) or
    to a temporary folder removed once ONNX Runtime has loaded the file.

    ``onnx-int8`` needs ``calibration``: normalised image batches like the ones it will see.
    ``auto`` measures the candidates on the first batch of each size (``report`` receives
    the choice as one line).
    """
    backend = resolve_backend(backend, device)
    if backend == "auto":
        key = dict(getattr(model, "args", {}) or {"module": type(model).__name__})
        candidates = default_candidates(model, device)
        trusted = {}
        if int8_file is not None and torch.device(device).type == "cpu":
            trusted = int8_candidates(int8_file, candidates)
            key["int8"] = str(int8_file.stat().st_mtime_ns)
        return AutoRunner(candidates, key, device, report=report, min_agreement=trusted)
    if backend in TORCH_BACKENDS:
        return TorchRunner(model, backend, device)
    from fcnlab.export.onnx import export_onnx_model
    from fcnlab.export.quantize import quantize_onnx

    with tempfile.TemporaryDirectory(prefix="fcnlab-onnx-") as scratch:
        # ONNX Runtime holds the model in memory once loaded: the scratch copy can go.
        folder = Path(workdir or scratch)
        onnx_file = export_onnx_model(model, folder / "model.onnx")
        if backend.endswith("-int8"):
            if not calibration:
                raise FcnlabError(f"{backend} needs calibration images; pass some sample images.")
            onnx_file = quantize_onnx(onnx_file, folder / "model.int8.onnx", calibration)
        openvino = backend.startswith("openvino")
        runner = OpenVinoRunner(onnx_file) if openvino else OnnxRunner(onnx_file)
    runner.backend = backend
    return runner


def int8_candidates(int8_file: Path, candidates: dict) -> dict[str, float]:
    """Add the runners of an int8 file (its val mIoU already checked) to ``candidates``;
    returns the pixel agreement each still needs."""
    from fcnlab.infer.companion import MIN_INT8_AGREEMENT

    def onnx_int8() -> OnnxRunner:
        runner = OnnxRunner(int8_file)
        runner.backend = "onnx-int8"
        return runner

    def openvino_int8() -> OpenVinoRunner:
        runner = OpenVinoRunner(int8_file)
        runner.backend = "openvino-int8"
        return runner

    skipped = skipped_backends()
    trusted = {}
    if "onnx-int8" not in skipped:
        candidates["onnx-int8"] = onnx_int8
        trusted["onnx-int8"] = MIN_INT8_AGREEMENT
    if _openvino_usable() and "openvino-int8" not in skipped:
        candidates["openvino-int8"] = openvino_int8
        trusted["openvino-int8"] = MIN_INT8_AGREEMENT
    return trusted


def default_candidates(
    model: torch.nn.Module, device: str = "cpu"
) -> dict[str, Callable[[], Runner]]:
    """The backends worth measuring for ``model`` here: no calibration, no minutes of
    compiling; ``FCNLAB_AUTOTUNE_SKIP`` leaves some out (:func:`skipped_backends`)."""
    candidates: dict[str, Callable[[], Runner]] = {
        "eager": lambda: TorchRunner(model, "eager", device),
        "channels_last": lambda: TorchRunner(model, "channels_last", device),
    }
    if bf16_is_native(device):
        candidates["bf16"] = lambda: TorchRunner(model, "bf16", device)
    if torch.device(device).type == "cpu" and _installed("onnx", "onnxruntime"):
        candidates["onnx"] = lambda: make_runner(model, "onnx", device)
        if _openvino_usable():
            candidates["openvino"] = lambda: make_runner(model, "openvino", device)
    return {name: build for name, build in candidates.items() if name not in skipped_backends()}


def _openvino_usable() -> bool:
    """OpenVINO is installed and no ISA cap is set (under one it runs wrongly, see above)."""
    return isa_cap() is None and _installed("openvino")


def _installed(*modules: str) -> bool:
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in modules)
