"""Training throughput: fcnlab's loop vs a plain hand-written PyTorch loop, and data loading.

    python bench/train_throughput.py --root ../shared/data/camvid --steps 30

All three run in this one process on the same CamVid training data and transforms:
(1) the data loader alone, (2) a plain loop (forward, cross-entropy, backward, AdamW step)
over the same model and loader, (3) ``fcnlab.engine.train.train`` with the same settings.
Images/s excludes the first ``--warmup`` steps of each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchdoc import machine_line, table, write_section
from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.data import CAMVID_INFO, build_dataset, train_transforms
from fcnlab.engine.train import train
from fcnlab.models import create_model


def settings(args) -> list[str]:
    return [
        "experiment=throughput",
        f"model.name={args.model}",
        "data.name=camvid",
        f"data.root={args.root}",
        f"data.scale={args.scale}",
        f"data.crop_size=[{args.crop[0]}, {args.crop[1]}]",
        f"data.batch_size={args.batch}",
        f"data.workers={args.workers}",
        f"train.precision={args.precision}",
        f"train.channels_last={str(args.channels_last).lower()}",
        "train.optimizer=adamw",
        f"train.steps={args.steps}",
        f"train.log_every={args.warmup}",
        f"train.val_every={args.steps * 10}",
        f"train.checkpoint_every={args.steps * 10}",
        "train.report_samples=0",
        "data.val_split=val",
    ]


def make_loader(cfg: ExperimentConfig) -> DataLoader:
    d = cfg.data
    tf = train_transforms(
        tuple(d.crop_size),
        tuple(d.scale_range),
        d.hflip,
        d.color_jitter,
        ignore_index=CAMVID_INFO.ignore_index,
        base_scale=d.scale,
    )
    dataset = build_dataset("camvid", d.root, "train", tf)
    return DataLoader(
        dataset, batch_size=d.batch_size, shuffle=True, drop_last=True, num_workers=d.workers
    )


def images_per_s(cfg: ExperimentConfig, steps: int, warmup: int, step=None) -> float:
    """Run ``step(images, masks)`` on ``steps`` batches (none: just load them)."""
    count, start = 0, time.perf_counter()
    while count < steps:
        for images, masks in make_loader(cfg):
            if step is not None:
                step(images, masks)
            count += 1
            if count == warmup:
                start = time.perf_counter()
            if count >= steps:
                break
    return (steps - warmup) * cfg.data.batch_size / (time.perf_counter() - start)


def plain_step(cfg: ExperimentConfig):
    model = create_model(cfg.model.name, CAMVID_INFO.num_classes).train()
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    bf16 = cfg.train.precision == "bf16"

    def step(images, masks):
        if cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(images)
        loss = F.cross_entropy(out.float(), masks, ignore_index=CAMVID_INFO.ignore_index)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def fcnlab_loop(cfg: ExperimentConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = train(cfg, Path(tmp) / "run")
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    rates = [r["images_per_s"] for r in records if "images_per_s" in r][1:]  # after warm-up
    return sum(rates) / len(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--model", default="deeplabv3plus_mobilenet_v2")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--crop", type=int, nargs=2, default=[180, 240])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()
    cfg = apply_overrides(ExperimentConfig(), settings(args))
    results = {
        "data loading only": images_per_s(cfg, args.steps, args.warmup),
        "plain PyTorch loop": images_per_s(cfg, args.steps, args.warmup, plain_step(cfg)),
        "fcnlab train": fcnlab_loop(cfg),
    }
    plain = results["plain PyTorch loop"]
    rows = [[name, f"{rate:.2f}", f"{rate / plain:.2f}"] for name, rate in results.items()]
    for row in rows:
        print(" | ".join(row))
    command = (
        f"python bench/train_throughput.py --root DIR --model {args.model} "
        f"--steps {args.steps} --batch {args.batch} --scale {args.scale} "
        f"--crop {args.crop[0]} {args.crop[1]} --workers {args.workers} "
        f"--precision {args.precision}" + ("" if args.channels_last else " --no-channels-last")
    )
    body = "\n\n".join(
        [
            "## Training throughput: fcnlab vs a plain PyTorch loop (CamVid)",
            f"{args.model}, batch {args.batch}, crops {args.crop[0]}x{args.crop[1]} at scale "
            f"{args.scale}, {args.precision}, channels_last={args.channels_last}, "
            f"{args.workers} loader workers, {args.steps} steps ({args.warmup} warm-up). "
            f"Machine: {machine_line()}.",
            f"Command: `{command}`",
            table(["what", "images/s", "ratio to plain loop"], rows),
        ]
    )
    print(f"wrote {write_section('train_throughput', body)}")


if __name__ == "__main__":
    main()
