"""What a bench run writes: the machine it ran on and its results as one JSON document.

The document is ``{"machine": {...}, "ceilings": {"fp32_gflops", "bf16_gflops", ...},
"settings": {...}, "results": {model: {backend: {"median_ms": ..., ...}}}}``; each result
has the keys of :data:`fcnlab.bench.harness.ROW_KEYS` but model and backend, and ``error`` is
None unless that backend failed. ``fcnlab bench --json`` and ``bench/speed.py`` write it.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from fcnlab.bench.ceilings import Ceilings
from fcnlab.hardware import cpu_model, isa_cap, isa_summary, machine_line
from fcnlab.infer.runtime import bf16_is_fast, resolve_backend, rule_backend


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, threads, library versions, the default backend."""
    info: dict[str, Any] = {
        "machine": machine_line(),
        "cpu": cpu_model(),
        "isa": isa_summary(),
        "isa_cap": isa_cap(),
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_fast": bf16_is_fast(),
        "rule_backend": rule_backend(),
        "default_backend": resolve_backend("auto"),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def results_json(rows: list[dict[str, Any]], ceilings: Ceilings, settings: dict) -> dict:
    """The JSON document described in the module docstring."""
    results: dict[str, dict[str, dict]] = {}
    for row in rows:
        values = {k: v for k, v in row.items() if k not in ("model", "backend")}
        results.setdefault(row["model"], {})[row["backend"]] = values
    return {
        "machine": machine_info(),
        "ceilings": ceilings.as_dict(),
        "settings": settings,
        "results": results,
    }
