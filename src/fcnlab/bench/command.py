"""``fcnlab bench``: time models on execution paths, print a table, optionally write JSON.

    fcnlab bench deeplabv3plus_mobilenet_v2 fcn8s_vgg16 --path all --json bench.json

The JSON holds ``{"machine": {...}, "ceilings": {"fp32_gflops", "bf16_gflops", ...},
"settings": {...}, "results": {model: {path: {"median_ms": ..., ...}}}}``; each result has
the keys of :data:`fcnlab.bench.harness.ROW_KEYS` but model and path, and ``error`` is None
unless that path failed.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from fcnlab.bench.ceilings import Ceilings, measure_ceilings
from fcnlab.bench.harness import (
    TABLE_HEADER,
    bench_models,
    expand_paths,
    fcnlab_candidate,
    table_cells,
)
from fcnlab.bench.timing import check_counts
from fcnlab.config import PositiveInt, coerce
from fcnlab.errors import FcnlabError
from fcnlab.hardware import cpu_model, isa_summary, machine_line
from fcnlab.infer.runtime import bf16_is_fast, resolve_path, rule_path


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, threads, library versions, the default path."""
    info: dict[str, Any] = {
        "machine": machine_line(),
        "cpu": cpu_model(),
        "isa": isa_summary(),
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_fast": bf16_is_fast(),
        "rule_path": rule_path(),
        "default_path": resolve_path("auto"),
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
        values = {k: v for k, v in row.items() if k not in ("model", "path")}
        results.setdefault(row["model"], {})[row["path"]] = values
    return {
        "machine": machine_info(),
        "ceilings": ceilings.as_dict(),
        "settings": settings,
        "results": results,
    }


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in TABLE_HEADER:
        table.add_column(column, justify="left" if column in ("model", "path") else "right")
    for row in rows:
        table.add_row(*table_cells(row))
    return table


#: The most input pixels per call ``fcnlab bench`` times (64 MPixel: ~770 MB of fp32 input).
MAX_BENCH_PIXELS = 2**26


def bench_command(
    models: Annotated[list[str], typer.Argument(help="fcnlab model names, e.g. fcn8s_vgg16.")],
    size: Annotated[str, typer.Option(help="Input size HxW.")] = "512x512",
    batch: Annotated[int, typer.Option(help="Images per call.")] = 1,
    path: Annotated[
        list[str] | None,
        typer.Option(
            "--path",
            help="Execution path (repeatable): eager, channels_last, bf16, compile, "
            "compile-bf16, onnx, onnx-int8, best (fcnlab's default here) or all; "
            "default: best.",
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs per path (median reported).")] = 10,
    warmup: Annotated[int, typer.Option(help="Untimed runs before timing.")] = 2,
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 21,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads (default: PyTorch's choice).")
    ] = None,
) -> None:
    """Time models on execution paths: median latency, images/s, GFLOP/s, agreement vs eager."""
    from fcnlab.cli import parse_size  # here: the CLI package imports this module

    hw = parse_size(size)
    check_counts(repeats, warmup)
    coerce(batch, PositiveInt, "--batch")
    coerce(classes, PositiveInt, "--classes")
    if batch * hw[0] * hw[1] > MAX_BENCH_PIXELS:
        raise FcnlabError(
            f"--batch {batch} x --size {size} is {batch * hw[0] * hw[1]:,} pixels per call, "
            f"over the {MAX_BENCH_PIXELS:,} that bench times; use a smaller size or batch."
        )
    if threads is not None:
        if threads < 1:
            raise FcnlabError(f"threads must be at least 1, not {threads}.")
        torch.set_num_threads(threads)
    candidates = [fcnlab_candidate(name) for name in models]  # unknown names fail here
    paths = expand_paths(path or ["best"])  # unknown paths too, before measuring anything
    console = Console()
    ceilings = measure_ceilings()
    bf16 = (
        f"bf16 GEMM {ceilings.bf16_gflops:.0f} GFLOP/s"
        if ceilings.bf16_gflops is not None
        else "bf16 not measured (no native bf16 here)"
    )
    console.print(f"machine: {machine_line()}", highlight=False)
    console.print(f"ceilings: fp32 GEMM {ceilings.fp32_gflops:.0f} GFLOP/s, {bf16}")
    rows = bench_models(candidates, hw, batch, paths, repeats, warmup, classes, ceilings)
    title = f"{batch}x3x{hw[0]}x{hw[1]}, median of {repeats} after {warmup} warm-up"
    console.print(rich_table(rows, title))
    if json_path is not None:
        settings = {"size": list(hw), "batch": batch, "repeats": repeats, "warmup": warmup}
        document = results_json(rows, ceilings, {**settings, "classes": classes})
        try:
            json_path.write_text(json.dumps(document, indent=1))
        except OSError as err:
            raise FcnlabError(f"cannot write {json_path}: {err.strerror}.") from err
        console.print(f"results: {json_path}")
