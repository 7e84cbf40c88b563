"""The ``openvino`` backends: an ONNX file run by OpenVINO on the CPU.

fcnlab's ONNX files take any input size, and OpenVINO runs them with dynamic shapes: the pad
to a multiple of the output stride, the crop back and ASPP's image pooling are then shape
arithmetic at run time. Compiled for one static input shape, OpenVINO folds all of it:
DeepLabv3+ MobileNetV2 at 512x512 ran in 25.7 ms instead of 45.5 on an AMX Xeon (2 threads,
OpenVINO 2026.4; bench/speed.py). So a shape met a second time gets its own static
compilation; the :data:`STATIC_SHAPES` most recently used are kept, the dynamic one always
answers first sightings (no compile on a one-off size) and whatever a static one cannot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from fcnlab.errors import FcnlabError
from fcnlab.hardware import isa_cap

#: Static compilations kept (least recently used dropped): each holds its own weights.
STATIC_SHAPES = 2
#: Shapes remembered as seen once, waiting for a second sighting.
SEEN_SHAPES = 16


class OpenVinoRunner:
    """Runs an ONNX file with OpenVINO on the CPU (latency hint, torch's thread count).

    OpenVINO picks its own precision: bf16 where the CPU has AMX or AVX512-BF16, fp32
    elsewhere; an int8 QDQ file runs in int8. Safe to share across threads (one request per
    call, under a lock).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        if isa_cap() is not None:
            # OpenVINO 2026.4 reads the variable too: under it, fp32 returned empty outputs and
            # int8 crashed the process (an AMX Xeon capped at AVX2, tests/infer/test_openvino).
            raise FcnlabError(
                f"OpenVINO does not run correctly under ONEDNN_MAX_CPU_ISA={isa_cap()} (its "
                "outputs came back empty); unset the variable or choose another backend."
            )
        try:
            import openvino
        except ImportError:
            raise FcnlabError(
                "OpenVINO is not installed; install it with: pip install 'fcnlab[openvino]'."
            ) from None
        self._config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        }
        self._core = openvino.Core()
        try:
            self._model = self._core.read_model(str(path))
            self.compiled = self._core.compile_model(self._model, "CPU", self._config)
        except Exception as error:  # OpenVINO raises its own, unexported exception types
            raise FcnlabError(f"{path} cannot be compiled by OpenVINO ({error}).") from None
        self.request = self.compiled.create_infer_request()
        self.static: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._seen: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self.backend, self.device = "openvino", torch.device("cpu")
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        with self._lock:
            out = self._request_for(tuple(array.shape)).infer({0: array})[0]
        if out.shape[0] != array.shape[0] or out.shape[2:] != array.shape[2:]:
            raise FcnlabError(
                f"OpenVINO returned logits of shape {tuple(out.shape)} for an input of shape "
                f"{tuple(array.shape)}; this is an OpenVINO fault, choose another backend."
            )
        return torch.from_numpy(out.copy())

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Compile ``shape`` statically now: the caller will run it repeatedly (autotune)."""
        with self._lock:
            if shape not in self.static:
                self._seen.pop(shape, None)
                self._compile_static(shape)

    def _request_for(self, shape: tuple[int, ...]) -> Any:
        """The static request of ``shape`` if it has (or now earns) one, else the dynamic."""
        if shape in self.static:
            self.static.move_to_end(shape)
            return self.static[shape]
        if shape not in self._seen:
            self._seen[shape] = None
            while len(self._seen) > SEEN_SHAPES:
                self._seen.popitem(last=False)
            return self.request
        del self._seen[shape]
        return self._compile_static(shape)

    def _compile_static(self, shape: tuple[int, ...]) -> Any:
        try:
            model = self._model.clone()
            model.reshape(list(shape))
            request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
        except Exception:  # a graph OpenVINO cannot make static: the dynamic one serves it
            return self.request
        self.static[shape] = request
        while len(self.static) > STATIC_SHAPES:
            self.static.popitem(last=False)
        return request
