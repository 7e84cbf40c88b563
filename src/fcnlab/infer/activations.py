"""The activation cost of a model: bytes per input pixel, measured once per predictor.

:func:`activation_cost` runs one forward at :data:`PROBE_SIZE` under :class:`LiveTensors`, a
dispatch mode that records the bytes of every tensor an operator returns and the peak of
those still alive (views of one storage count once); kernel workspaces and allocator slack
are not tensors, so the peak is multiplied by :data:`ACTIVATION_SAFETY`. Compiled models are
measured on their eager module, run as the compiled runner would. Runners without a PyTorch
module (ONNX Runtime) are measured by the peak resident memory (VmHWM) the probe adds,
doubled.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils._python_dispatch import TorchDispatchMode

if TYPE_CHECKING:
    from fcnlab.infer.predictor import Predictor

PROBE_SIZE = (160, 160)
ACTIVATION_SAFETY = 1.25


@dataclass(frozen=True)
class ActivationCost:
    bytes_per_pixel: float  # model activations per input pixel, safety factor included
    method: str  # "dispatch" or "rss"


_COSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def activation_cost(predictor: Predictor) -> ActivationCost:
    """The model's activation bytes per input pixel, measured once per predictor."""
    if predictor not in _COSTS:
        _COSTS[predictor] = _measure(predictor)
    return _COSTS[predictor]


def _measure(predictor: Predictor) -> ActivationCost:
    x = torch.zeros(1, 3, *PROBE_SIZE)
    pixels = PROBE_SIZE[0] * PROBE_SIZE[1]
    runner = getattr(predictor.runner, "reference", predictor.runner)  # auto: its eager one
    model = getattr(runner, "model", None)
    if not isinstance(model, torch.nn.Module):  # ONNX Runtime or a custom runner
        return ActivationCost(_rss_probe(runner, x) * 2 / pixels, "rss")
    with torch.inference_mode(), LiveTensors() as live:
        if hasattr(model, "_orig_mod"):  # compiled: dispatch modes do not see inside graphs
            _eager_like(runner, model._orig_mod, x)
        else:
            runner(x)
    return ActivationCost(live.peak * ACTIVATION_SAFETY / pixels, "dispatch")


def _eager_like(runner, module: torch.nn.Module, x: torch.Tensor) -> None:
    """``module`` run as the compiled runner would: its layout, under its autocast."""
    x = x.to(runner.device, memory_format=runner.memory_format)
    bf16 = getattr(runner, "bf16", False)
    with torch.autocast(runner.device.type, dtype=torch.bfloat16, enabled=bf16):
        module(x)


def _rss_probe(runner, x: torch.Tensor) -> int:
    """Peak resident bytes a forward of ``x`` adds (VmHWM, reset through clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = read_status("VmRSS")
        runner(x)
        return max(read_status("VmHWM") - before, 0)
    except OSError:
        return 2048 * x.shape[-2] * x.shape[-1]  # no /proc: a generous constant, 2 KiB/px


def read_status(field: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` memory field (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/{pid}/status has no {field}")


class LiveTensors(TorchDispatchMode):
    """Tracks the bytes held by tensors that operators return: ``peak`` of those alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage pointer -> [tensors alive, bytes]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in self._refs:
            self._refs[key] = [0, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._refs[key][0] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[key]
