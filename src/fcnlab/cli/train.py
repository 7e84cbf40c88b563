"""Commands for building and judging models: models, summary, train, eval, report, data check
(registered in :mod:`fcnlab.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fcnlab.cli.base import _is_main_process, console, parse_size
from fcnlab.errors import FcnlabError


def models(
    size: Annotated[str, typer.Option(help="Input size HxW for the FLOP count.")] = "512x512",
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 21,
    filter: Annotated[str, typer.Option(help="Only names containing this text.")] = "",
) -> None:
    """List every model with its parameters, GFLOPs (batch 1) and ImageNet weights."""
    from fcnlab.models import list_models
    from fcnlab.models.registry import imagenet_weights_of
    from fcnlab.models.summary import model_stats

    h, w = parse_size(size)
    names = [n for n in list_models() if filter in n]
    table = Table(title=f"fcnlab models ({classes} classes, GFLOPs at 1x3x{h}x{w})")
    for column in ("model", "params (M)", "GFLOPs", "ImageNet weights"):
        table.add_column(column, justify="right" if column[0] in "pG" else "left")
    for name in names:
        stats = model_stats(name, (h, w), classes)
        weights = imagenet_weights_of(name)
        table.add_row(name, f"{stats.params / 1e6:.2f}", f"{stats.gflops:.1f}", weights)
    console.print(table)
    console.print(
        f"{len(names)} models; any timm model also works as backbone tu-<timm name> "
        "(e.g. fcn8s_tu-resnet18)"
    )


def summary(
    name: Annotated[str, typer.Argument(help="Model name, e.g. fcn8s_vgg16.")],
    size: Annotated[str, typer.Option(help="Input size HxW.")] = "512x512",
    classes: Annotated[int, typer.Option(help="Number of classes.")] = 21,
    depth: Annotated[int, typer.Option(help="How many module levels to show.")] = 3,
    diagram: Annotated[
        Path | None, typer.Option(help="Write a dataflow diagram (.dot, .mmd or .md).")
    ] = None,
) -> None:
    """Print each layer's output shape and parameters (like Keras' model.summary())."""
    from fcnlab.config import PositiveInt, coerce
    from fcnlab.models.diagram import trace_graph, write_diagram
    from fcnlab.models.summary import build_on_meta, count_flops, count_parameters, layer_table

    hw = parse_size(size)
    coerce(depth, PositiveInt, "--depth")
    model = build_on_meta(name, classes)
    table = Table(title=f"{name} at 1x3x{hw[0]}x{hw[1]}, {classes} classes")
    for column in ("layer", "type", "output shape", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in layer_table(model, hw, depth):
        table.add_row(row.name, row.kind, row.output, f"{row.params:,}")
    console.print(table)
    params, flops = count_parameters(model), count_flops(model, hw)
    console.print(f"total parameters: {params:,}   GFLOPs: {flops / 1e9:.2f}")
    if diagram is not None:
        console.print(f"diagram: {write_diagram(trace_graph(model, hw), diagram)}", markup=False)


def train(
    config: Annotated[
        Path | None, typer.Argument(help="Experiment YAML (default: the built-in quickstart).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set train.lr=0.01 (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default runs/<experiment>).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in the folder.")] = False,
) -> None:
    """Train a model; writes checkpoints, metrics and a report into the run folder."""
    from fcnlab.config import apply_overrides, load_config
    from fcnlab.engine.train import run_dir_for
    from fcnlab.engine.train import train as run_training

    cfg = apply_overrides(load_config(config), set_ or [])
    saved = run_dir_for(cfg, out) / "config.yaml"
    if resume and saved.is_file():
        cfg = apply_overrides(load_config(saved), set_ or [])  # the run's own config
    run_dir = run_training(cfg, out, resume)
    if _is_main_process():
        if cfg.train.int8_companion:
            _int8_companion(run_dir / "best.pt")
        console.print(f"run folder: {run_dir}", markup=False, soft_wrap=True)


def _int8_companion(checkpoint: Path) -> None:
    """best.int8.onnx beside best.pt, with its val mIoU delta; skipped without ONNX Runtime."""
    from importlib.util import find_spec

    if not checkpoint.is_file():
        return
    if find_spec("onnxruntime") is None or find_spec("onnx") is None:
        console.print(
            "int8 companion skipped: ONNX Runtime is not installed (pip install 'fcnlab[onnx]').",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    from fcnlab.export import export_checkpoint

    try:
        result = export_checkpoint(checkpoint, None, "onnx-int8")
    except FcnlabError as error:  # the run itself succeeded: say why, keep exit code 0
        console.print(
            f"int8 companion not written: {error}", highlight=False, markup=False, soft_wrap=True
        )
        return
    quality = f"; {result.quality.line()}" if result.quality else ""
    console.print(
        f"int8 companion: {result.file}{quality}", highlight=False, markup=False, soft_wrap=True
    )


def eval_(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by fcnlab train.")],
    data: Annotated[str | None, typer.Option(help="Dataset (default: the checkpoint's).")] = None,
    root: Annotated[Path | None, typer.Option(help="Dataset folder.")] = None,
    split: Annotated[str | None, typer.Option(help="Split (default: its val split).")] = None,
    scale: Annotated[
        float | None, typer.Option(help="Working resolution (default: the training scale).")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="auto (bf16 where native, else fp32), fp32, bf16 or fp16 (GPU).")
    ] = "auto",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Where to write the metrics JSON.")
    ] = None,
    boundary: Annotated[
        bool, typer.Option("--boundary", help="Also score SegNet's boundary F1 (BF) per class.")
    ] = False,
    boundary_tolerance: Annotated[
        float,
        typer.Option(help="BF distance tolerance, a fraction of the image diagonal."),
    ] = 0.0075,
    sequences: Annotated[
        str | None,
        typer.Option(
            help="Only these sequences of the split (file-name prefixes, comma-separated), "
            "e.g. a run's data.holdout_sequences with --split train."
        ),
    ] = None,
    tta: Annotated[
        str,
        typer.Option(help="none, or flip: average with the mirrored image's prediction."),
    ] = "none",
) -> None:
    """Evaluate a checkpoint: pixel acc, mean acc, mIoU, fwIoU and per-class IoU (and BF)."""
    from fcnlab.config import check_option
    from fcnlab.engine.boundary import check_tolerance, format_boundary
    from fcnlab.engine.evaluate import evaluate_checkpoint
    from fcnlab.engine.metrics import format_metrics

    if data is not None:
        check_option("data.name", data, "--data")
    if scale is not None:
        check_option("data.scale", scale, "--scale")
    check_option("train.precision", precision, "--precision")
    check_tolerance(boundary_tolerance, "--boundary-tolerance")
    if tta not in ("none", "flip"):
        raise FcnlabError(f"--tta must be none or flip, not {tta!r}.")
    names = [s.strip() for s in sequences.split(",")] if sequences is not None else []
    if sequences is not None and not all(names):
        raise FcnlabError(f"--sequences {sequences!r} holds an empty name; list prefixes.")

    metrics, written = evaluate_checkpoint(
        checkpoint,
        data=data,
        root=root,
        split=split,
        scale=scale,
        precision=precision,
        json_path=json_path,
        boundary=boundary,
        boundary_tolerance=boundary_tolerance,
        sequences=names,
        flip=tta == "flip",
    )
    if written is not None:  # only the main process writes and prints under torchrun
        console.print(format_metrics(metrics))
        if "bf" in metrics:
            console.print(format_boundary(metrics))
        console.print(f"metrics: {written}", markup=False, soft_wrap=True)


def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """(Re)write a run folder's report.html and report.md."""
    from fcnlab.engine.report import write_report

    if not run_dir.is_dir():
        raise FcnlabError(f"run folder {run_dir} does not exist.")
    console.print(f"report: {write_report(run_dir)}", markup=False, soft_wrap=True)


def data_check(
    data: Annotated[str, typer.Option(help="voc, camvid, folder or synthetic.")],
    root: Annotated[Path | None, typer.Option(help="Dataset folder.")] = None,
    split: Annotated[str, typer.Option(help="Split to check.")] = "train",
    option: Annotated[
        list[str] | None, typer.Option(help="Dataset option key=value (repeatable).")
    ] = None,
) -> None:
    """Verify a dataset before training: pairs, sizes, label values, class histogram."""
    import yaml

    from fcnlab.config import check_option
    from fcnlab.data import check_dataset, format_report

    check_option("data.name", data, "--data")
    options = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FcnlabError(f"option {item!r} must look like key=value.")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise FcnlabError(f"option {item!r}: the value is not valid YAML.") from None
    report = check_dataset(data, root, split, **options)
    console.print(format_report(report, report.info), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)
