"""CamVid on a time budget (from scratch or from ImageNet weights), judged on held-out
sequences as well as val.

    fcnlab train configs/camvid_1h.yaml                 # 60 minutes, holds out 0006R0
    python bench/camvid_1h.py runs/camvid_1h --section camvid_1h --tta

    # screening: one recipe change per run, the same shorter budget each
    python bench/camvid_1h.py /tmp/scr/a_base /tmp/scr/c_sqrt ... --section camvid_1h_screen

Every run must have been trained with ``data.holdout_sequences`` (CamVid's train split is
three drives, 0001TP, 0006R0 and 0016E5; val is more frames of 0016E5, so val rewards fitting
that drive). Its ``eval.json`` holds the final model's metrics on val and on the held-out
sequences at full label resolution: global accuracy G, class-average accuracy C, mIoU and
SegNet's boundary F1 (BF, 0.75% of the diagonal, mean over classes). With ``--tta`` the first
run's final model is evaluated again with flip test-time augmentation, reported on its own
rows (never in the headline), and its per-class table is written. The machine line names the
CPU; every run is assumed to have run alone on it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from benchdoc import machine_line, table, write_section
from fcnlab.config import ExperimentConfig, config_to_dict
from fcnlab.engine.evaluate import evaluate_checkpoint
from fcnlab.models.backbones.weights import describe_source

PAPER = [
    ["SegNet-Basic (SegNet paper Table 1: test split, GPU, to convergence)", "82.7 / 62.0 / 47.7"],
    ["FCN-Basic (same table)", "81.7 / 62.4 / 47.3"],
]
#: Published CamVid results (11 classes, SegNet split, test) for runs from ImageNet weights.
PRETRAINED_ANCHORS = [
    ["SegNet-Basic", "scratch", "82.7 / 62.0 / 47.7"],
    ["SegNet VGG16, trained on CamVid only", "ImageNet", "- / 65.2 / 55.6"],
    ["ESPNet", "scratch", "- / 68.3 / 55.6"],
    ["SegNet VGG16, trained on 3.5K road images (TPAMI Table 3)", "ImageNet", "90.4 / 71.2 / 60.1"],
]


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def headline(metrics: dict) -> str:
    """G / C / mIoU (/ BF), in percent."""
    cells = [pct(metrics[k]) for k in ("pixel_acc", "mean_acc", "miou")]
    if metrics.get("bf") is not None:
        cells.append(pct(metrics["bf"]))
    return " / ".join(cells)


#: Keys that do not change the trained model (the budget is in its own column).
_AFTER_TRAINING = ("time_budget", "int8_companion", "report_samples")


def recipe(cfg: dict, base: dict | None) -> str:
    """The config keys in which this run differs from the first one (or the first's model)."""
    if base is None:
        return f"{cfg['model']['name']} (reference)"
    defaults = config_to_dict(ExperimentConfig())  # for keys added to fcnlab since base ran
    changed = [
        f"{section}.{key}={value}"
        for section in ("model", "data", "train")
        for key, value in cfg[section].items()
        if key not in _AFTER_TRAINING and base[section].get(key, defaults[section][key]) != value
    ]
    return ", ".join(changed) or "same as the reference"


def read(run_dir: Path) -> tuple[dict, dict]:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    final = json.loads((run_dir / "eval.json").read_text())
    if "holdout" not in final:
        raise SystemExit(f"{run_dir} was trained without data.holdout_sequences")
    return cfg, final


def comparison(runs: list[Path]) -> str:
    rows, base = [], None
    for run_dir in runs:
        cfg, final = read(run_dir)
        held = final["holdout"]
        rows.append(
            [
                recipe(cfg, base),
                cfg["train"]["time_budget"] or f"{cfg['train']['steps']} steps",
                str(final["steps"]),
                f"{final['elapsed_s'] / 60:.1f}",
                headline(final),
                headline(held),
                f"{100 * (final['miou'] - held['miou']):+.1f}",
            ]
        )
        base = base or cfg
    header = [
        "recipe",
        "budget",
        "steps",
        "minutes",
        "val G / C / mIoU / BF %",
        "held-out G / C / mIoU / BF %",
        "val - held-out mIoU",
    ]
    return table(header, rows)


def with_tta(run_dir: Path) -> tuple[str, str]:
    """Per-class table and flip-TTA rows for the run's final model."""
    _, final = read(run_dir)
    held = final["holdout"]
    checkpoint = run_dir / "last.pt"
    out = Path("/tmp") / f"camvid_1h_{run_dir.name}"
    out.mkdir(exist_ok=True)
    val_flip, _ = evaluate_checkpoint(
        checkpoint, flip=True, boundary=True, json_path=out / "val_flip.json"
    )
    held_flip, _ = evaluate_checkpoint(
        checkpoint,
        split=held["split"],
        sequences=held["sequences"],
        flip=True,
        boundary=True,
        json_path=out / "holdout_flip.json",
    )
    tta = table(
        ["evaluation", "val G / C / mIoU / BF %", "held-out G / C / mIoU / BF %"],
        [
            ["single pass (the headline)", headline(final), headline(held)],
            ["flip TTA (mean of the image's and its mirror's probabilities)",
             headline(val_flip), headline(held_flip)],
        ],
    )  # fmt: skip
    per_class = []
    for v, h in zip(final["per_class"], held["per_class"], strict=True):
        per_class.append(
            [
                v["name"],
                pct(v["iou"]),
                pct(h["iou"]) if h["present"] else "absent",
                pct(v["acc"]),
                pct(h["acc"]) if h["present"] else "absent",
                pct(final.get("per_class_bf", {}).get(v["name"])),
                pct(held.get("per_class_bf", {}).get(v["name"])),
            ]
        )
    classes = table(
        ["class", "val IoU", "held-out IoU", "val acc", "held-out acc", "val BF", "held-out BF"],
        per_class,
    )
    return tta, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--section", default="camvid_1h")
    parser.add_argument("--title", default="CamVid from scratch in one hour: val and held-out")
    parser.add_argument("--tta", action="store_true", help="flip TTA + per-class for the first")
    parser.add_argument("--how", default="", help="how the runs were made (a sentence)")
    args = parser.parse_args()
    _, final = read(args.runs[0])
    held = final["holdout"]
    command = f"python bench/camvid_1h.py {' '.join(map(str, args.runs))} --section {args.section}"
    weights = final.get("backbone_weights")
    start = (
        f"Backbone from {describe_source(weights)}"
        if weights
        else "From scratch (no pretrained weights)"
    )
    parts = [
        f"## {args.title}",
        f"{start}, one run after the other, alone on this machine: "
        f"{machine_line()}. Held out of training: sequence(s) {', '.join(held['sequences'])} of "
        f"split {held['split']!r} ({held['images']} images); val is CamVid val (101 images of "
        "drive 0016E5, whose other frames are in train). Metrics of each run's final model at "
        "full label resolution; BF = boundary F1 at 0.75% of the diagonal, mean over classes. "
        "The time includes the validations and the final evaluation.",
        *([args.how] if args.how else []),
        f"Command: `{command}{' --tta' if args.tta else ''}`",
        comparison(args.runs),
    ]
    if weights:
        parts += [
            "Published anchors (CamVid 11 classes, SegNet split, test images):",
            table(["anchor", "pretraining", "G / C / mIoU %"], PRETRAINED_ANCHORS),
        ]
    else:
        parts.append(
            "For reference: " + "; ".join(f"{n}: {g}" for n, g in PAPER) + " (G / C / mIoU)."
        )
    if args.tta:
        tta, classes = with_tta(args.runs[0])
        parts += [
            f"The first run ({args.runs[0].name}), single pass vs flip test-time augmentation "
            "(`fcnlab eval CHECKPOINT --tta flip`, and with `--split train --sequences "
            f"{','.join(held['sequences'])}` for the held-out images):",
            tta,
            "Per class (single pass, %):",
            classes,
        ]
    body = "\n\n".join(parts)
    print(body)
    print(f"wrote {write_section(args.section, body)}")


if __name__ == "__main__":
    main()
