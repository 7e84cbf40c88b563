"""Exported files as runners, ``runner(x) -> logits``: what the parity checks here run.

- :class:`OnnxRunner`: an ONNX file in an ONNX Runtime session (CPU, or CUDA when its
  provider is installed); :mod:`fcnlab.infer.runtime` runs its ``onnx`` backends with it;
- :class:`ModuleRunner`: a loaded (e.g. traced TorchScript) module in eval and inference mode.

Both take a normalised ``N x 3 x H x W`` float batch and return float32 logits.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fcnlab.errors import FcnlabError


class OnnxRunner:
    """Runs an ONNX file with ONNX Runtime (CPU, or CUDA when its provider is installed)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own, unexported exception types
            raise FcnlabError(f"{path} cannot be loaded by ONNX Runtime ({error}).") from None
        self.input_name = self.session.get_inputs()[0].name
        self.backend, self.device = "onnx", torch.device("cpu")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        (logits,) = self.session.run(None, {self.input_name: array})[:1]
        return torch.from_numpy(logits)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise FcnlabError(
            "ONNX Runtime is not installed; install it with: pip install 'fcnlab[onnx]'."
        ) from None
    return onnxruntime


class ModuleRunner:
    """Runs a module as exported: eval mode, inference mode, contiguous float32 logits."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x.contiguous())
        if isinstance(out, dict):
            out = out["out"]
        return out.float().contiguous()
