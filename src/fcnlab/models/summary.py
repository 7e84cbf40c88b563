"""Seeing a model: parameter counts, FLOPs, a per-layer table and a dataflow diagram.

Everything here runs on the meta device (shapes only, no arithmetic), so even VGG-based FCNs
at 512x512 are profiled in milliseconds. FLOPs are torch's FlopCounterMode counts (one
multiply-add = 2 FLOPs) for a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fcnlab.models.registry import create_model


@dataclass(frozen=True)
class ModelStats:
    name: str
    params: int
    gflops: float


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output: str
    params: int


def build_on_meta(name: str, num_classes: int = 21, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, num_classes, **kwargs).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: tuple[int, int]) -> int:
    x = torch.empty(1, 3, *size, device=_device(model))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def model_stats(name: str, size: tuple[int, int], num_classes: int = 21, **kwargs) -> ModelStats:
    model = build_on_meta(name, num_classes, **kwargs)
    return ModelStats(name, count_parameters(model), count_flops(model, size) / 1e9)


def layer_table(model: nn.Module, size: tuple[int, int], depth: int = 3) -> list[LayerRow]:
    """One row per module at most ``depth`` levels deep, in the order they run."""
    rows: dict[str, LayerRow | None] = {}
    handles = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth:
            continue

        def before(mod, args, name=name):
            rows.setdefault(name, None)  # order rows by when each module starts

        def after(mod, args, out, name=name):
            if rows.get(name) is None:
                rows[name] = LayerRow(
                    name, type(mod).__name__, _describe(out), count_parameters(mod)
                )

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, *size, device=_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return [row for row in rows.values() if row is not None]


def _describe(out) -> str:
    if isinstance(out, torch.Tensor):
        return "x".join(map(str, out.shape))
    if isinstance(out, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in out.items())
    if isinstance(out, tuple | list):
        return ", ".join(_describe(v) for v in out)
    return type(out).__name__


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
