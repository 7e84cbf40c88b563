"""The run report: validation sample strips and an HTML + Markdown summary of a run folder.

Contract. A run folder may hold (all optional, written by the trainer and the evaluator):

- ``config.yaml``: the resolved config;
- ``metrics.jsonl``: one JSON object per line with ``step`` and ``epoch`` and some of
  ``train_loss``, ``lr``, ``val_loss``, ``val_miou``, ``val_pixel_acc``, ``val_mean_acc``,
  ``images_per_s``; unreadable lines (a run killed mid-write) are skipped and counted;
- ``eval.json``: a :func:`~fcnlab.engine.metrics.compute_metrics` dict, optionally with
  ``checkpoint`` and ``split``, and with ``bf``, ``bf_image`` and ``per_class_bf`` when it
  was evaluated with ``--boundary`` (:mod:`fcnlab.engine.boundary`);
- ``samples/sample_XX.png``: strips written by :func:`save_samples`.

:func:`write_report` reads whatever of these exists, draws the figures into ``plots/`` and
writes ``report.html`` and ``report.md`` that reference the PNGs by relative paths, so the
folder renders offline, on GitHub, and after being moved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from fcnlab.engine import report_plots
from fcnlab.engine.metrics import format_percent
from fcnlab.engine.report_render import (
    Block,
    Code,
    Heading,
    Images,
    Table,
    Text,
    render_html,
    render_markdown,
)
from fcnlab.errors import FcnlabError
from fcnlab.masks import Palette, overlay
from fcnlab.models.backbones.weights import describe_source

SAMPLES_DIR = "samples"
PLOTS_DIR = "plots"
_GAP = 4  # white pixels between the panels of a sample strip


def save_samples(
    run_dir: Path,
    images: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    palette: Palette,
    ignore_index: int | None,
) -> list[Path]:
    """Write ``samples/sample_XX.png`` strips: image | label overlay | prediction overlay.

    Earlier ``sample_*.png`` files are removed first, so the folder always shows the latest
    validation. Ignored label pixels are left unblended (the plain image shows through).
    """
    if not len(images) == len(preds) == len(labels):
        raise FcnlabError(
            f"save_samples needs as many images, predictions and labels, got "
            f"{len(images)}, {len(preds)} and {len(labels)}."
        )
    out_dir = Path(run_dir) / SAMPLES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("sample_*.png"):
        old.unlink()
    paths = []
    for i, (image, pred, label) in enumerate(zip(images, preds, labels, strict=True)):
        image = np.asarray(image)
        gap = np.full((image.shape[0], _GAP, 3), 255, dtype=np.uint8)
        strip = np.concatenate(
            [
                image,
                gap,
                overlay(image, label, palette, ignore_index),
                gap,
                # Predictions are always classes, even if the ignore index is a class index.
                overlay(image, pred, palette, None),
            ],
            axis=1,
        )
        path = out_dir / f"sample_{i:02d}.png"
        Image.fromarray(strip).save(path)
        paths.append(path)
    return paths


@dataclass
class RunRecord:
    """What a run folder holds; every piece may be missing."""

    config: dict | None
    history: list[dict]
    evaluation: dict | None
    samples: list[str]  # relative to the run folder
    skipped_lines: int = 0


def read_run(run_dir: Path) -> RunRecord:
    """Read the pieces of a run folder that exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FcnlabError(f"The run folder {run_dir} does not exist.")
    config = None
    if (path := run_dir / "config.yaml").is_file():
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise FcnlabError(f"{path} is not valid YAML ({err.__class__.__name__}).") from err
        if not isinstance(config, dict):
            raise FcnlabError(f"{path} must hold a mapping of config sections.")
    history, skipped = _read_jsonl(run_dir / "metrics.jsonl")
    evaluation = None
    if (path := run_dir / "eval.json").is_file():
        try:
            evaluation = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise FcnlabError(f"{path} is not valid JSON; re-run the evaluation.") from err
    samples = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.glob("samples/*.png"))
    if config is None and not history and evaluation is None:
        raise FcnlabError(
            f"{run_dir} holds no run (no config.yaml, metrics.jsonl or eval.json); pass a "
            "folder that fcnlab train wrote."
        )
    return RunRecord(config, history, evaluation, samples, skipped)


def _read_jsonl(path: Path) -> tuple[list[dict], int]:
    """The JSON-object lines of ``path`` and the number of unreadable lines."""
    if not path.is_file():
        return [], 0
    records, skipped = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def write_report(run_dir: Path) -> Path:
    """Write ``report.html``, ``report.md`` and ``plots/*.png``; return the HTML path."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    plots = _draw_plots(run, run_dir)
    title = f"fcnlab run report: {run_dir.resolve().name}"
    blocks = _blocks(run, plots)
    html_path = run_dir / "report.html"
    html_path.write_text(render_html(title, blocks), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(title, blocks), encoding="utf-8")
    return html_path


def _draw_plots(run: RunRecord, run_dir: Path) -> dict[str, str]:
    """Draw every figure there is data for; name -> path relative to the run folder."""
    out = run_dir / PLOTS_DIR
    drawn = {
        "loss": report_plots.plot_losses(run.history, out / "loss.png"),
        "val": report_plots.plot_val_metrics(run.history, out / "val_metrics.png"),
    }
    if run.evaluation:
        drawn["class_iou"] = report_plots.plot_class_iou(run.evaluation, out / "class_iou.png")
        drawn["confusion"] = report_plots.plot_confusion(run.evaluation, out / "confusion.png")
    return {k: p.relative_to(run_dir).as_posix() for k, p in drawn.items() if p is not None}


def _blocks(run: RunRecord, plots: dict[str, str]) -> list[Block]:
    blocks: list[Block] = [Heading("Run")]
    facts = _facts(run)
    blocks.append(
        Table(["item", "value"], facts, "ll") if facts else Text("No config or metrics yet.")
    )
    blocks += _metric_blocks(run)
    blocks.append(Heading("Training curves"))
    curves = [plots[k] for k in ("loss", "val") if k in plots]
    blocks.append(Images(curves) if curves else Text("Nothing logged to metrics.jsonl yet."))
    if "class_iou" in plots or "confusion" in plots:
        blocks.append(Heading("Per-class results"))
        blocks.append(Images([plots[k] for k in ("class_iou", "confusion") if k in plots]))
    if run.samples:
        blocks.append(Heading("Validation samples"))
        blocks.append(Images(run.samples, caption="image | label | prediction"))
    if run.config:
        text = yaml.safe_dump(run.config, sort_keys=False)
        blocks.append(Code("Resolved config (config.yaml)", text))
    return blocks


def _lookup(config: dict | None, section: str, key: str) -> object | None:
    """``config[section][key]`` from the run's config.yaml, or None when absent."""
    value = (config or {}).get(section, {})
    return value.get(key) if isinstance(value, dict) else None


def _weights(run: RunRecord) -> str | None:
    """Where the backbone's weights came from, as the final evaluation recorded it."""
    if not run.evaluation or "backbone_weights" not in run.evaluation:
        return None
    source = run.evaluation["backbone_weights"]
    return describe_source(source if isinstance(source, dict) else None)


def _facts(run: RunRecord) -> list[list[str]]:
    cfg, history = run.config, run.history
    facts = {
        "model": _lookup(cfg, "model", "name"),
        "backbone weights": _weights(run),
        "dataset": _lookup(cfg, "data", "name"),
        "classes": len(run.evaluation["per_class"]) if run.evaluation else None,
    }
    planned = _lookup(cfg, "train", "steps")
    steps = [r["step"] for r in history if isinstance(r.get("step"), int)]
    if steps:
        facts["steps"] = f"{max(steps)}" + (f" of {planned}" if planned is not None else "")
    elif planned is not None:
        facts["steps"] = f"0 of {planned}"
    epochs = [r["epoch"] for r in history if isinstance(r.get("epoch"), (int, float))]
    if epochs:
        facts["epochs"] = max(epochs)
    validated = [r for r in history if isinstance(r.get("val_miou"), (int, float))]
    if validated:
        best = max(validated, key=lambda r: r["val_miou"])
        facts["best val mIoU"] = f"{format_percent(best['val_miou'])}% at step {best.get('step')}"
    speeds = [r["images_per_s"] for r in history if isinstance(r.get("images_per_s"), (int, float))]
    if speeds:
        facts["throughput"] = f"{speeds[-1]:.1f} images/s"
    if run.evaluation:
        facts["evaluated checkpoint"] = run.evaluation.get("checkpoint")
        facts["evaluation split"] = run.evaluation.get("split")
    if run.skipped_lines:
        facts["unreadable metrics.jsonl lines"] = run.skipped_lines
    return [[k, str(v)] for k, v in facts.items() if v is not None]


def _metric_blocks(run: RunRecord) -> list[Block]:
    """Final metrics: eval.json if there is one, else the last validation in the history."""
    blocks: list[Block] = [Heading("Metrics")]
    ev = run.evaluation
    if ev and "miou" in ev:
        blocks += _evaluation_blocks(ev, "From eval.json.")
        held = ev.get("holdout")
        if isinstance(held, dict) and "miou" in held:
            sequences = ", ".join(map(str, held.get("sequences") or []))
            blocks.append(Heading("Held-out sequences"))
            what = (
                f"The {held.get('images')} images of sequence(s) {sequences} of split "
                f"{held.get('split')!r}, kept out of training (data.holdout_sequences)."
            )
            blocks += _evaluation_blocks(held, what)
        return blocks
    validated = [r for r in run.history if isinstance(r.get("val_miou"), (int, float))]
    if not validated:
        return [*blocks, Text("No validation results yet.")]
    last = validated[-1]
    names = {
        "val_pixel_acc": "pixel accuracy",
        "val_mean_acc": "mean class accuracy",
        "val_miou": "mean IoU",
        "holdout_miou": "mean IoU, held-out sequences",
    }
    rows = [[label, format_percent(last[k])] for k, label in names.items() if k in last]
    blocks.append(Text(f"No eval.json yet; last validation, at step {last.get('step')}."))
    blocks.append(Table(["metric", "%"], rows, "lr"))
    return blocks


def _evaluation_blocks(ev: dict, what: str) -> list[Block]:
    """One evaluation's headline table and per-class table (with BF where it was scored)."""
    blocks: list[Block] = []
    rows = [
        ["pixel accuracy", format_percent(ev.get("pixel_acc"))],
        ["mean class accuracy", format_percent(ev.get("mean_acc"))],
        ["mean IoU", format_percent(ev.get("miou"))],
        ["frequency-weighted IoU", format_percent(ev.get("fwiou"))],
    ]
    if "bf" in ev:
        rows.append(["boundary F1 (BF), mean over classes", format_percent(ev["bf"])])
        if ev.get("bf_image") is not None:
            rows.append(["boundary F1, mean over images", format_percent(ev["bf_image"])])
    blocks += [Text(what), Table(["metric", "%"], rows, "lr")]
    bf = ev.get("per_class_bf") if isinstance(ev.get("per_class_bf"), dict) else None
    per_class = [
        [
            str(c["index"]),
            c["name"],
            *_class_cells(c),
            *([format_percent(bf.get(c["name"]))] if bf is not None else []),
            f"{c['pixels']:,}",
        ]
        for c in ev.get("per_class", [])
    ]
    if per_class:
        header = ["#", "class", "IoU %", "acc %", "label pixels"]
        if bf is not None:
            header.insert(4, "BF %")
        blocks.append(Table(header, per_class, "rlrrrr" if bf is not None else "rlrrr"))
    return blocks


def _class_cells(c: dict) -> list[str]:
    if not c["present"]:
        return ["absent", "absent"]
    return [format_percent(c["iou"]), format_percent(c["acc"])]
