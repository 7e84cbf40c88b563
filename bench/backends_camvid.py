"""Execution backends on real data: predict speed and accuracy of each on CamVid val.

    python bench/backends_camvid.py --root ../shared/data/camvid --threads 2

For each trained checkpoint and each backend, fcnlab's ``Predictor`` (the code behind
``fcnlab predict``) is loaded on that backend (onnx-int8 calibrated on ``--calibration``
CamVid *train* images), run once untimed (compilation, caches), then over the val images
(already decoded in memory), one image per call at the checkpoint's working scale with
masks returned at full size. Images/s counts only ``predict`` calls; mIoU and pixel
accuracy come from fcnlab's ConfusionMatrix against the val labels (11 = void, ignored).
A bf16 or int8 backend losing more than 0.5 mIoU points against fp32 eager is marked
"not default". Writes the "predict_backends" section of docs/benchmarks.md (``--doc``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.bench.harness import expand_backends
from fcnlab.data import build_dataset
from fcnlab.engine.metrics import ConfusionMatrix
from fcnlab.infer import Predictor, resolve_backend

DEFAULT_CHECKPOINTS = [
    f"runs/camvid_bench_{name}/best.pt"
    for name in ("deeplabv3plus_mobilenet_v2", "fcn8s_resnet18", "fcn32s_resnet18")
]
DEFAULT_BACKENDS = ["eager", "channels_last", "bf16", "compile", "onnx", "onnx-int8"]
LOW_PRECISION = ("bf16", "compile-bf16", "onnx-int8")
#: The most mIoU (as a fraction) a reduced-precision backend may lose and still be a default.
MAX_MIOU_LOSS = 0.005
Pair = tuple[Image.Image, np.ndarray]


def load_split(root: Path, split: str, limit: int | None) -> tuple[list[Pair], int, int]:
    """Decoded (image, mask) pairs of a CamVid split, plus its class count and ignore index."""
    dataset = build_dataset("camvid", root, split)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    pairs = [dataset.load(i) for i in range(count)]
    return pairs, dataset.info.num_classes, dataset.info.ignore_index


def run_backend(
    checkpoint: Path, backend: str, val: list[Pair], calibration, classes, ignore
) -> dict:
    """Load ``checkpoint`` on ``backend``, predict every val image, time and score it."""
    start = time.perf_counter()
    predictor = Predictor.load(checkpoint, backend=backend, calibration=calibration)
    predictor.predict(val[0][0])  # untimed: compilation, allocator and kernel caches
    prepare_s = time.perf_counter() - start
    matrix = ConfusionMatrix(classes, ignore)
    elapsed = 0.0
    for image, mask in val:
        start = time.perf_counter()
        prediction = predictor.predict(image)
        elapsed += time.perf_counter() - start
        matrix.update(torch.from_numpy(prediction.mask.astype(np.int64)), torch.from_numpy(mask))
    metrics = matrix.compute()
    return {
        "backend": predictor.backend,
        "images_per_s": len(val) / elapsed,
        "miou": metrics["miou"],
        "pixel_acc": metrics["pixel_acc"],
        "prepare_s": prepare_s,
        "error": None,
    }


def note(result: dict, reference: dict | None) -> str:
    """Why a backend is or is not fit to be fcnlab's default, against the fp32 eager result."""
    parts = []
    if result is reference:
        parts.append("fp32 reference")
    if result["backend"] == resolve_backend("auto"):
        parts.append("fcnlab default")
    if reference is not None and result["backend"] in LOW_PRECISION:
        loss = reference["miou"] - result["miou"]
        if loss > MAX_MIOU_LOSS:
            parts.append(f"**not default**: loses {100 * loss:.2f} mIoU")
    return ", ".join(parts)


def table_rows(name: str, results: list[dict]) -> list[list[str]]:
    reference = next((r for r in results if r["backend"] == "eager" and not r["error"]), None)
    rows = []
    for r in results:
        if r["error"]:
            rows.append([name, r["backend"], "", "", "", "", "", f"failed: {r['error']}"])
            continue
        delta = "" if reference is None else f"{100 * (r['miou'] - reference['miou']):+.2f}"
        rows.append(
            [
                name,
                r["backend"],
                f"{r['images_per_s']:.2f}",
                f"{100 * r['miou']:.2f}",
                delta,
                f"{100 * r['pixel_acc']:.2f}",
                f"{r['prepare_s']:.1f}",
                note(r, reference),
            ]
        )
    return rows


def bench_checkpoint(checkpoint: Path, backends: list[str], val, calibration, classes, ignore):
    results = []
    for backend in backends:
        try:
            results.append(run_backend(checkpoint, backend, val, calibration, classes, ignore))
        except Exception as error:  # one failing backend (e.g. no compiler) must not stop others
            reason = f"{type(error).__name__}: {error}"[:200]
            results.append({"backend": backend, "error": reason})
        print(checkpoint.parent.name, results[-1], flush=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", nargs="+", type=Path, default=DEFAULT_CHECKPOINTS)
    p.add_argument("--root", type=Path, default=Path("../shared/data/camvid"))
    p.add_argument(
        "--backends", nargs="+", default=DEFAULT_BACKENDS, help="backend names, best or all"
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N val images")
    p.add_argument("--calibration", type=int, default=16, help="train images for onnx-int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--doc", type=Path, default=DOC, help="markdown file to write the section to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/backends_camvid.py", *(argv or sys.argv[1:])])
    backends = expand_backends(["eager", *args.backends])  # eager is the fp32 reference
    val, classes, ignore = load_split(args.root, "val", args.limit)
    calibration = [image for image, _ in load_split(args.root, "train", args.calibration)[0]]
    rows, missing = [], []
    for checkpoint in map(Path, args.checkpoints):
        if not checkpoint.is_file():
            missing.append(str(checkpoint))
            continue
        results = bench_checkpoint(checkpoint, backends, val, calibration, classes, ignore)
        rows += table_rows(checkpoint.parent.name, results)
    header = ["run", "backend", "images/s", "mIoU %", "Δ mIoU", "pixel acc %", "prepare s", "note"]
    body = [
        "## Predict backends on CamVid val: speed and accuracy",
        f"`fcnlab predict`'s Predictor, one image per call, {len(val)} val images "
        f"(360x480, at each checkpoint's working scale, masks at full size), onnx-int8 "
        f"calibrated on {len(calibration)} train images. Images/s excludes loading and the "
        f"first call. Δ mIoU is against fp32 eager; a bf16/int8 backend losing more than "
        f"{100 * MAX_MIOU_LOSS:.1f} is marked not default. fcnlab's default backend here: "
        f"{resolve_backend('auto')}. Machine: {machine_line()}.",
        f"Command: `{command}`",
        table(header, rows) if rows else "No checkpoint found.",
    ]
    if missing:
        body.append("Missing checkpoints (not trained yet): " + ", ".join(missing))
    written = write_section("predict_backends", "\n\n".join(body), args.doc)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
