"""What this machine can do at best: dense GEMM (and 3x3 conv) throughput, fp32 and bf16.

A model's achieved GFLOP/s means little alone; divided by these ceilings it says how much of
the hardware the model uses. Contract of every ``*_gflops`` function: the median over
``repeats`` timed runs (after one warm-up) of ``flops / seconds / 1e9`` with the current
``torch.get_num_threads()``, on the CPU unless ``device`` says otherwise.

Ceilings of bf16 are measured only where bf16 is native (AMX/AVX512-BF16 CPUs, bf16 GPUs):
elsewhere bf16 is emulated, a measurement would take minutes and say nothing about the
hardware, so they are ``None``.

- GEMM: ``n x n @ n x n`` square matrix products, ``2 n^3`` FLOPs.
- conv: a 3x3, stride 1, padding 1 convolution of ``channels`` in and out over one
  ``size x size`` image, ``2 * 9 * channels^2 * size^2`` FLOPs; fp32 in NCHW, bf16 in
  channels_last (the layout oneDNN runs bf16 convolutions fastest in).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from fcnlab.bench.timing import time_call
from fcnlab.hardware import bf16_is_native


@dataclass(frozen=True)
class Ceilings:
    fp32_gflops: float
    bf16_gflops: float | None  # None where bf16 is not native (not measured)
    conv_fp32_gflops: float | None = None
    conv_bf16_gflops: float | None = None
    gemm_size: int = 2048

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def gemm_gflops(
    dtype: torch.dtype = torch.float32,
    n: int = 2048,
    repeats: int = 5,
    device: torch.device | str = "cpu",
) -> float:
    """Median GFLOP/s of an ``n x n`` matrix product in ``dtype``."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device, dtype)
    b = torch.randn(n, n, generator=generator).to(device, dtype)
    with torch.inference_mode():
        timing = time_call(torch.matmul, a, b, repeats=repeats, warmup=1, device=device)
    return 2 * n**3 / (timing.median_ms / 1e3) / 1e9


def conv_gflops(
    dtype: torch.dtype = torch.float32,
    channels: int = 256,
    size: int = 128,
    repeats: int = 3,
    device: torch.device | str = "cpu",
) -> float:
    """Median GFLOP/s of a 3x3 ``channels -> channels`` convolution on ``size x size``."""
    generator = torch.Generator().manual_seed(0)
    layout = torch.channels_last if dtype == torch.bfloat16 else torch.contiguous_format
    x = torch.randn(1, channels, size, size, generator=generator)
    w = torch.randn(channels, channels, 3, 3, generator=generator) * 0.02
    x = x.to(device, dtype).contiguous(memory_format=layout)
    w = w.to(device, dtype).contiguous(memory_format=layout)
    with torch.inference_mode():
        timing = time_call(F.conv2d, x, w, None, 1, 1, repeats=repeats, warmup=1, device=device)
    return 2 * 9 * channels**2 * size**2 / (timing.median_ms / 1e3) / 1e9


def measure_ceilings(
    gemm_size: int = 2048,
    repeats: int = 5,
    conv: bool = True,
    device: torch.device | str = "cpu",
    bf16: bool | None = None,
) -> Ceilings:
    """fp32 GEMM ceilings, plus the 3x3 conv ones when ``conv`` is true, and bf16's when
    ``bf16`` (default: where bf16 is native on ``device``)."""
    bf16 = bf16_is_native(device) if bf16 is None else bf16
    return Ceilings(
        fp32_gflops=gemm_gflops(torch.float32, gemm_size, repeats, device),
        bf16_gflops=gemm_gflops(torch.bfloat16, gemm_size, repeats, device) if bf16 else None,
        conv_fp32_gflops=conv_gflops(torch.float32, device=device) if conv else None,
        conv_bf16_gflops=conv_gflops(torch.bfloat16, device=device) if conv and bf16 else None,
        gemm_size=gemm_size,
    )
