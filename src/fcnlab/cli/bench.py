"""``fcnlab bench``: time models on execution backends, print a table, optionally write JSON.

    fcnlab bench deeplabv3plus_mobilenet_v2 fcn8s_vgg16 --backend all --json bench.json

The measuring is :mod:`fcnlab.bench`; the JSON document is
:func:`fcnlab.bench.report.results_json` (``results[model][backend]["median_ms"]``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from fcnlab.bench.ceilings import measure_ceilings
from fcnlab.bench.harness import (
    TABLE_HEADER,
    bench_models,
    expand_backends,
    fcnlab_candidate,
    table_cells,
)
from fcnlab.bench.report import results_json
from fcnlab.bench.timing import check_counts
from fcnlab.cli.base import deprecated_path, parse_size
from fcnlab.config import PositiveInt, coerce
from fcnlab.errors import FcnlabError
from fcnlab.hardware import machine_line
from fcnlab.infer.runtime import BACKENDS

#: The most input pixels per call ``fcnlab bench`` times (64 MPixel: ~770 MB of fp32 input).
MAX_BENCH_PIXELS = 2**26

BACKEND_HELP = (
    f"Execution backend (repeatable): {', '.join(BACKENDS)}, best (fcnlab's default here), "
    "auto, rule or all; default: best."
)


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in TABLE_HEADER:
        table.add_column(column, justify="left" if column in ("model", "backend") else "right")
    for row in rows:
        table.add_row(*table_cells(row))
    return table


def print_whole(console: Console, table: Table) -> None:
    """Print ``table``; into a log or a pipe (no terminal to fit) at its natural width.

    Rich squeezes a table to the console's width, 80 columns where there is no terminal, which
    wraps every cell of a bench table; a file has no width to respect.
    """
    if console.is_terminal:
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update_width(1000)).maximum
    # print(width=) cannot exceed the console's own width: a console as wide as the table.
    Console(file=console.file, width=max(console.width, natural)).print(table)


def bench_command(
    models: Annotated[list[str], typer.Argument(help="fcnlab model names, e.g. fcn8s_vgg16.")],
    size: Annotated[str, typer.Option(help="Input size HxW.")] = "512x512",
    batch: Annotated[int, typer.Option(help="Images per call.")] = 1,
    backend: Annotated[list[str] | None, typer.Option(help=BACKEND_HELP)] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs per backend (median reported).")] = 10,
    warmup: Annotated[int, typer.Option(help="Untimed runs before timing.")] = 2,
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 21,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads (default: PyTorch's choice).")
    ] = None,
    path: Annotated[list[str] | None, typer.Option(hidden=True)] = None,
) -> None:
    """Time models on execution backends: median latency, images/s, GFLOP/s, agreement vs eager."""
    if path:
        deprecated_path()
    backends = [*(backend or []), *(path or [])] or ["best"]
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
    names = expand_backends(backends)  # unknown backends too, before measuring anything
    console = Console()
    ceilings = measure_ceilings()
    bf16 = (
        f"bf16 GEMM {ceilings.bf16_gflops:.0f} GFLOP/s"
        if ceilings.bf16_gflops is not None
        else "bf16 not measured (no native bf16 here)"
    )
    console.print(f"machine: {machine_line()}", highlight=False)
    console.print(f"ceilings: fp32 GEMM {ceilings.fp32_gflops:.0f} GFLOP/s, {bf16}")
    rows = bench_models(candidates, hw, batch, names, repeats, warmup, classes, ceilings)
    title = f"{batch}x3x{hw[0]}x{hw[1]}, median of {repeats} after {warmup} warm-up"
    print_whole(console, rich_table(rows, title))
    if json_path is not None:
        settings = {"size": list(hw), "batch": batch, "repeats": repeats, "warmup": warmup}
        document = results_json(rows, ceilings, {**settings, "classes": classes})
        try:
            json_path.write_text(json.dumps(document, indent=1))
        except OSError as err:
            raise FcnlabError(f"cannot write {json_path}: {err.strerror}.") from err
        console.print(f"results: {json_path}")
