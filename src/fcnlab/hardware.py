"""What this machine is, and the precision that runs fastest and correctly on it.

Every speed figure fcnlab prints names its machine with :func:`machine_line` (CPU model,
cores and threads, the instruction-set extensions that decide CPU speed, torch version), and
``precision: auto`` resolves here (:func:`resolve_precision`):

==========================================  ==========  ====================================
device                                      auto        why
==========================================  ==========  ====================================
CUDA GPU with bf16 (Ampere and newer)       bf16        native bf16 tensor cores
CUDA GPU without bf16                       fp16        with a gradient scaler in training
CPU with AMX-BF16 or AVX512-BF16            bf16        native bf16 matrix units
any other CPU (AVX2, AVX-512 without BF16)  fp32        bf16 is emulated there: ~10x slower
==========================================  ==========  ====================================

``ONEDNN_MAX_CPU_ISA`` below the bf16 units (e.g. ``AVX2`` on an AMX Xeon) makes the CPU count
as one without them: torch then emulates bf16 there too (:func:`usable_flags`).

The rule follows the measurements in docs/benchmarks.md (PyTorch's own issues 86270 and
118499 report the same emulation slowdown). This module imports only torch.
"""

from __future__ import annotations

import functools
import os
import platform
import warnings
from dataclasses import dataclass

import torch

#: The ISA flags that matter for CPU deep learning, in the order they are reported.
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX",
}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # fp32, bf16 or fp16
    reason: str  # one clause: what decided it

    def line(self) -> str:
        return f"precision {self.precision} ({self.reason})"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; torch's capability probe elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    get = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.8
    if get is None:
        return frozenset()
    return frozenset(name for name, present in get().items() if present is True)


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: What ``ONEDNN_MAX_CPU_ISA`` (oneDNN's dispatch cap, which torch's convolutions and bf16
#: matrix products obey) leaves of :data:`ISA_FLAGS`: a CPU with AMX capped at ``AVX2`` runs
#: bf16 emulated, exactly like an AVX2-only CPU. Unknown values cap nothing.
ISA_CAPS = {
    "SSE41": frozenset(),
    "AVX": frozenset(),
    "AVX2": frozenset({"avx2"}),
    "AVX2_VNNI": frozenset({"avx2"}),
    "AVX2_VNNI_2": frozenset({"avx2"}),
    "AVX512_CORE": frozenset({"avx2", "avx512f"}),
    "AVX512_CORE_VNNI": frozenset({"avx2", "avx512f", "avx512_vnni"}),
    "AVX512_CORE_BF16": frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
    "AVX512_CORE_FP16": frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
    "AVX10_1_512": frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
}


def isa_cap() -> str | None:
    """The ``ONEDNN_MAX_CPU_ISA`` (or older ``DNNL_MAX_CPU_ISA``) cap in force, if it caps."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    value = value.strip().upper()
    return value if value in ISA_CAPS else None


def usable_flags() -> frozenset[str]:
    """The CPU's flags less those an ISA cap keeps oneDNN (and so torch) from using."""
    flags, cap = cpu_flags(), isa_cap()
    if cap is None:
        return flags
    return flags - (set(ISA_FLAGS) - ISA_CAPS[cap])


def isa_summary(flags: frozenset[str] | None = None) -> str:
    """``AVX2 / AVX-512 / VNNI / AVX512-BF16 / AMX``: the extensions present, or ``basic``."""
    flags = cpu_flags() if flags is None else flags
    present = [label for flag, label in ISA_FLAGS.items() if flag in flags]
    return " / ".join(present) or "no AVX2"


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Native bf16 units that torch may use: an ISA cap below them counts as their absence."""
    flags = usable_flags() if flags is None else flags
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def bf16_is_native(device: torch.device | str = "cpu") -> bool:
    """bf16 runs on real bf16 units: CUDA GPUs that support it, CPUs with AMX/AVX512-BF16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def resolve_precision(requested: str, device: torch.device | str = "cpu") -> PrecisionChoice:
    """The precision to run ``requested`` at on ``device``, with the reason for it."""
    device = torch.device(device)
    if requested != "auto":
        if requested == "bf16" and not bf16_is_native(device):
            warn_slow_bf16(device)
        return PrecisionChoice(requested, "as configured")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"auto: {name} has native bf16")
        return PrecisionChoice("fp16", f"auto: {name} has no bf16")
    if cpu_has_native_bf16():
        units = "AMX" if "amx_bf16" in usable_flags() else "AVX512-BF16"
        return PrecisionChoice("bf16", f"auto: {cpu_model()} has {units}")
    if cpu_has_native_bf16(cpu_flags()):
        return PrecisionChoice(
            "fp32",
            f"auto: {cpu_model()} has native bf16 but ONEDNN_MAX_CPU_ISA={isa_cap()} keeps torch "
            "from it, so bf16 is emulated",
        )
    return PrecisionChoice(
        "fp32", f"auto: {cpu_model()} has no AMX/AVX512-BF16 ({isa_summary()}), bf16 is emulated"
    )


@functools.cache
def warn_slow_bf16(device: torch.device) -> None:
    """Warn once: bf16 without native units runs, but about 10x slower than fp32 on CPUs."""
    warnings.warn(
        f"precision bf16 on {cpu_model() if device.type == 'cpu' else device}, which has no "
        "native bf16 units: it runs, but expect it to be about 10x slower than fp32; use "
        "precision auto or fp32.",
        stacklevel=3,
    )


def machine_line() -> str:
    """``Intel Xeon ... (AVX2 / AVX-512 / AMX), 2 CPUs, 2 threads, torch 2.14.1``."""
    cores = os.cpu_count() or 1
    isa = isa_summary()
    if isa_cap() is not None:
        isa += f"; capped: ONEDNN_MAX_CPU_ISA={isa_cap()}"
    if os.environ.get("ATEN_CPU_CAPABILITY"):
        isa += f"; ATEN_CPU_CAPABILITY={os.environ['ATEN_CPU_CAPABILITY']}"
    line = (
        f"{cpu_model()} ({isa}), {cores} CPUs, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__.split('+')[0]}"
    )
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name(0)}"
    return line
