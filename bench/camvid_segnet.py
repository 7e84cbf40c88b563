"""SegNet-Basic beside FCN-8s and DeepLabv3+ on CamVid, same budget: quality, BF, size, latency.

    for m in segnet_basic fcn8s_resnet18 deeplabv3plus_mobilenet_v2; do
        fcnlab train configs/camvid_bench_$m.yaml --set train.time_budget=15m \\
            --set train.int8_companion=false
    done
    python bench/camvid_segnet.py runs/camvid_bench_segnet_basic \\
        runs/camvid_bench_fcn8s_resnet18 runs/camvid_bench_deeplabv3plus_mobilenet_v2

Each run's ``best.pt`` is evaluated on CamVid val at full label resolution (the model at its
working scale, logits resized to the labels): global accuracy G, class-average accuracy C,
mIoU and SegNet's boundary F1 (BF, tolerance 0.75% of the diagonal; mean over classes and,
as SegNet's paper averages, over images). Parameters and GFLOPs are for one image at the
working resolution; latency is the median of ``--repeats`` eager fp32 forward passes of one
image at that resolution, batch 1, after a warm-up, measured one model after the other in this
process. Results go into docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from benchdoc import machine_line, table, write_section
from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from fcnlab.engine.evaluate import evaluate_checkpoint
from fcnlab.hardware import resolve_precision
from fcnlab.models.summary import model_stats

PAPER = [
    "SegNet-Basic, SegNet paper Table 1 (test split, GPU, to convergence)",
    "-",
    "-",
    "82.7",
    "62.0",
    "47.7",
    "-",
]


def latency_ms(model: torch.nn.Module, size: tuple[int, int], repeats: int) -> float:
    x = torch.randn(1, 3, *size)
    times = []
    with torch.inference_mode():
        model.eval()(x)  # warm-up: allocator and oneDNN primitive caches
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _precision(setting: str) -> str:
    """What the run trained in on this machine (``auto`` resolved as training resolved it)."""
    resolved = resolve_precision(setting, torch.device("cpu")).precision
    return f"{resolved} ({setting})" if setting == "auto" else resolved


def measure(run_dir: Path, repeats: int) -> tuple[list[str], list[str]]:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    state = load_checkpoint(run_dir / "last.pt")["train_state"]
    metrics, _ = evaluate_checkpoint(run_dir / "best.pt", boundary=True)
    checkpoint = load_checkpoint(run_dir / "best.pt")
    name = checkpoint["model"]["name"]
    scale = checkpoint["scale"]
    size = (round(360 * scale), round(480 * scale))
    stats = model_stats(name, size, num_classes=checkpoint["model"]["num_classes"])
    ms = latency_ms(model_from_checkpoint(checkpoint), size, repeats)
    quality = [
        name,
        f"{state['step']}",
        f"{state['elapsed_s'] / 60:.0f}",
        f"{100 * metrics['pixel_acc']:.1f}",
        f"{100 * metrics['mean_acc']:.1f}",
        f"{100 * metrics['miou']:.1f}",
        f"{100 * metrics['bf']:.1f} / {100 * metrics['bf_image']:.1f}",
    ]
    cost = [
        name,
        f"{size[0]}x{size[1]}",
        f"{stats.params / 1e6:.2f}",
        f"{stats.gflops:.1f}",
        f"{ms:.0f}",
        _precision(cfg["train"]["precision"]),
    ]
    print(" | ".join(quality + cost[1:]), flush=True)
    return quality, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    measured = [measure(r, args.repeats) for r in args.runs]
    budgets = {
        yaml.safe_load((r / "config.yaml").read_text())["train"]["time_budget"] for r in args.runs
    }
    runs = " ".join(str(r) for r in args.runs)
    body = "\n\n".join(
        [
            "## CamVid from scratch, same budget: SegNet-Basic, FCN-8s ResNet-18, DeepLabv3+",
            f"Each model trained from scratch on CamVid train (367 images) with the same recipe "
            f"and time budget ({', '.join(sorted(budgets))} per model, one after the other on "
            f"this machine), `configs/camvid_bench_<model>.yaml`; `best.pt` evaluated on val "
            "(101 images) at full label resolution. BF = boundary F1 at 0.75% of the diagonal, "
            "mean over classes / mean over images (SegNet's averaging; equal here because every "
            "CamVid val image holds all 11 classes). Machine: "
            f"{machine_line()}.",
            f"Command: `python bench/camvid_segnet.py {runs}`",
            table(
                ["model", "steps", "minutes", "G %", "C %", "mIoU %", "BF % (class / image)"],
                [q for q, _ in measured] + [PAPER],
            ),
            "Size and CPU cost at the working resolution (eager fp32, batch 1, median of "
            f"{args.repeats}):",
            table(
                ["model", "input", "params (M)", "GFLOPs", "latency ms", "trained in"],
                [c for _, c in measured],
            ),
        ]
    )
    print(f"wrote {write_section('camvid_segnet', body)}")


if __name__ == "__main__":
    main()
