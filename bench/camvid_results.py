"""Collect CamVid-from-scratch runs into docs/benchmarks.md.

    fcnlab train configs/camvid_bench_deeplabv3plus_mobilenet_v2.yaml --set data.root=DIR
    fcnlab train configs/camvid_bench_fcn8s_vgg11_bn.yaml --set data.root=DIR
    python bench/camvid_results.py runs/camvid_bench_deeplabv3plus_mobilenet_v2 \\
        runs/camvid_bench_fcn8s_vgg11_bn

Reads each run folder's eval.json (val metrics of the final model at full resolution),
config.yaml and last.pt (training wall time) and writes one table with the references.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from benchdoc import machine_line, table, write_section
from fcnlab.engine.checkpoint import load_checkpoint

REFERENCES = [
    ["SegNet-Basic (SegNet paper, test split, GPU, to convergence)", "82.7", "62.0", "47.7", "-"],
    ["FCN-Basic (SegNet paper, test split, GPU, to convergence)", "81.7", "62.4", "47.3", "-"],
    [
        "plain 100-line smp DeepLabV3+ MobileNetV2 loop (val, 40 min here)",
        "81.3",
        "76.5",
        "51.6",
        "40",
    ],
]


def row(run_dir: Path) -> list[str]:
    metrics = json.loads((run_dir / "eval.json").read_text())
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    elapsed = load_checkpoint(run_dir / "last.pt")["train_state"]["elapsed_s"]
    name = (
        f"fcnlab {cfg['model']['name']} (val, scale {cfg['data']['scale']}, "
        f"{cfg['train']['steps']} steps, {cfg['train']['precision']})"
    )
    return [
        name,
        f"{100 * metrics['pixel_acc']:.1f}",
        f"{100 * metrics['mean_acc']:.1f}",
        f"{100 * metrics['miou']:.1f}",
        f"{elapsed / 60:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    rows = [row(r) for r in args.runs] + REFERENCES
    configs = ", ".join(f"`configs/{r.name}.yaml`" for r in args.runs)
    body = "\n\n".join(
        [
            "## CamVid from scratch on this CPU (11 classes, val split, full resolution)",
            f"No pretrained weights are reachable here, so every network starts from random "
            f"weights. Configs: {configs}; each run: `fcnlab train configs/NAME.yaml --set "
            f"data.root=../shared/data/camvid`, then "
            f"`python bench/camvid_results.py runs/NAME ...`. Metrics are the final model's, "
            f"on the 101 val images at their full 360x480 size "
            f"(a model trained at scale 0.5 predicts at half size, logits upsampled). Wall time "
            f"includes validation. Machine: {machine_line()}.",
            table(["model", "global acc %", "class acc %", "mIoU %", "minutes"], rows),
        ]
    )
    print(body)
    print(f"wrote {write_section('camvid', body)}")


if __name__ == "__main__":
    main()
