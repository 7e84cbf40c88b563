"""Commands for using trained models: predict, export and serve (registered in fcnlab.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from fcnlab.cli.base import backend_or_path, console, err_console, parse_size
from fcnlab.errors import FcnlabError
from fcnlab.infer.runtime import BACKENDS, check_backend

BACKEND_HELP = (
    "How to run a checkpoint: auto (the fastest backend that agrees with eager, measured on "
    "first use per model and size and cached), rule (bf16 where bf16 is native, else "
    f"channels_last; no measuring), or one of {', '.join(BACKENDS)}."
)


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise FcnlabError(f"--device must be auto, cpu or cuda, not {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise FcnlabError("--device cuda was asked for but no CUDA GPU is visible.")
    return device


def _calibration_images(folder: Path | None, count: int) -> list:
    """Up to ``count`` images from ``folder`` for int8 calibration (none without a folder)."""
    if folder is None:
        return []
    from fcnlab.data.decode import read_image
    from fcnlab.infer.files import gather_inputs

    return [read_image(p) for p in gather_inputs([folder])[:count]]


def predict(
    model: Annotated[Path, typer.Argument(help="A checkpoint (.pt), .onnx or .ts file.")],
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("predictions"),
    overlay: Annotated[bool, typer.Option(help="Also write NAME.overlay.jpg.")] = False,
    probs: Annotated[bool, typer.Option(help="Also write NAME.probs.npy (C x H x W).")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also write NAME.json with class fractions.")
    ] = False,
    tta: Annotated[
        str | None, typer.Option(help="Test-time augmentation: flip and/or scales=0.75,1,1.25.")
    ] = None,
    tile: Annotated[
        str | None, typer.Option(help="Sliding-window tile size HxW (each side >= 32).")
    ] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap fraction, 0 to 0.75.")] = 0.25,
    batch: Annotated[int, typer.Option(help="Images per batch (same-size images), >= 1.")] = 1,
    max_memory_mb: Annotated[
        float | None,
        typer.Option(
            help="Memory one batch may use (MiB); larger images are tiled to fit or skipped. "
            "Default: half of what is free (MemAvailable, cgroup limit, ulimit -v)."
        ),
    ] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    calibration: Annotated[
        Path | None, typer.Option(help="Folder of sample images for --backend onnx-int8.")
    ] = None,
    path: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Segment images at their own size; DIR/x.png holds the mask of a/b/x.jpg."""
    from fcnlab.infer import Predictor, parse_tta
    from fcnlab.infer.files import Outputs, gather_inputs, predict_files, prepare_out

    backend = check_backend(backend_or_path(backend, path))
    tile_size = parse_size(tile) if tile else None
    _check_predict_options(tile_size, overlap, batch, max_memory_mb)
    files = gather_inputs(inputs)
    prepare_out(out)
    predictor = Predictor.load(
        model,
        backend=backend,
        device=_device(device),
        tta=parse_tta(tta),
        tile=tile_size,
        overlap=overlap,
        calibration=_calibration_images(calibration, 32),
        report=lambda line: err_console.print(line, highlight=False, soft_wrap=True, markup=False),
    )
    want = Outputs(overlay=overlay, probs=probs, json=json_out)
    limit = _memory_limit(max_memory_mb)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"predict ({predictor.backend})", total=len(files))
        summary = predict_files(
            predictor,
            files,
            out,
            want,
            batch,
            lambda n: bar.advance(task, n),
            max_bytes=limit,
            notify=lambda line: bar.console.print(
                line, highlight=False, soft_wrap=True, markup=False
            ),
        )
    for bad, reason in summary.failed:
        err_console.print(
            f"[bold red]skipped[/] {escape(str(bad))}: {escape(reason)}",
            highlight=False,
            soft_wrap=True,
        )
    done = len(files) - len(summary.failed)
    line = f"{done} of {len(files)} images segmented into {out} ({predictor.backend})"
    console.print(line, highlight=False, soft_wrap=True, markup=False)
    if summary.failed:
        raise typer.Exit(1)


def _check_predict_options(
    tile: tuple[int, int] | None, overlap: float, batch: int, max_memory_mb: float | None
) -> None:
    from fcnlab.infer.tiling import check_tiling

    check_tiling(tile, overlap)
    if batch < 1:
        raise FcnlabError(f"--batch must be at least 1, not {batch}.")
    if max_memory_mb is not None and max_memory_mb < 16:
        raise FcnlabError(f"--max-memory-mb must be at least 16, not {max_memory_mb:g}.")


def _memory_limit(max_memory_mb: float | None) -> int:
    """Bytes per batch; PIL's decompression-bomb limit is set to agree with it."""
    from fcnlab.infer.files import default_memory_limit
    from fcnlab.infer.memory import MIB, set_decode_limit

    limit = int(max_memory_mb * MIB) if max_memory_mb else default_memory_limit()
    set_decode_limit(limit)
    return limit


def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by fcnlab train.")],
    format_: Annotated[
        str, typer.Option("--format", help="onnx, onnx-int8 or torchscript.")
    ] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option(help="Output file, or a folder to write NAME.onnx into (default: beside it)."),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="Folder of sample images (onnx-int8).")
    ] = None,
    calibration_count: Annotated[int, typer.Option(help="Calibration images to use.")] = 32,
) -> None:
    """Export with dynamic batch/height/width, checked against PyTorch before it is kept."""
    from fcnlab.export import export_checkpoint

    if calibration_count < 1:
        raise FcnlabError(f"--calibration-count must be at least 1, not {calibration_count}.")
    images = _calibration_images(calibration, calibration_count)
    result = export_checkpoint(checkpoint, out, format_, images)
    for row in result.parity:
        console.print(f"parity {row.line()}", markup=False)
    if result.quality is not None:
        console.print(result.quality.line(), highlight=False, markup=False)
    console.print(f"exported {result.format}: {result.file}", markup=False)


def serve(
    model: Annotated[Path, typer.Argument(help="A checkpoint (.pt), .onnx or .ts file.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1-65535).")] = 8000,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted.")] = 10.0,
    max_memory_mb: Annotated[
        float,
        typer.Option(help="Memory for uploads and inference (MiB); sets the pixel limit."),
    ] = 1024,
    max_pixels: Annotated[
        int | None,
        typer.Option(help="Largest image (pixels); default and ceiling: what memory allows."),
    ] = None,
    max_concurrent: Annotated[
        int, typer.Option(help="Uploads handled at once; more get 503 and Retry-After.")
    ] = 4,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds an upload may take to arrive (else 408).")
    ] = 30.0,
    path: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """A web demo: upload an image, see the overlay, legend and class fractions."""
    from fcnlab.serve import run_server

    backend = check_backend(backend_or_path(backend, path))
    if not 0 < max_upload_mb <= 1024:
        raise FcnlabError(f"--max-upload-mb must be in (0, 1024], not {max_upload_mb:g}.")
    if max_pixels is not None and max_pixels < 1:
        raise FcnlabError(f"--max-pixels must be at least 1, not {max_pixels}.")
    if max_concurrent < 1:
        raise FcnlabError(f"--max-concurrent must be at least 1, not {max_concurrent}.")
    run_server(
        model,
        host=host,
        port=port,
        backend=backend,
        max_bytes=int(max_upload_mb * 2**20),
        max_pixels=max_pixels,
        max_memory_mb=max_memory_mb,
        max_concurrent=max_concurrent,
        read_timeout=read_timeout,
    )
