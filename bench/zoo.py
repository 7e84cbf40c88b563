"""Every registered model: parameters, GFLOPs and CPU latency, into docs/benchmarks.md.

    python bench/zoo.py --size 512x512 --threads 2 --repeats 3

Latency is the median of ``--repeats`` timed forward passes (after one warm-up) of a batch of
one in eval mode, fp32, eager PyTorch, with ``torch.set_num_threads(--threads)``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchdoc import machine_line, table, write_section
from fcnlab.cli import parse_size
from fcnlab.models import create_model, list_models
from fcnlab.models.summary import model_stats


def latency_ms(name: str, size: tuple[int, int], repeats: int) -> list[float]:
    model = create_model(name, num_classes=21).eval()
    x = torch.randn(1, 3, *size)
    times = []
    with torch.inference_mode():
        model(x)  # warm-up: allocator and oneDNN primitive caches
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--filter", default="", help="only models whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = parse_size(args.size)
    rows = []
    for name in [n for n in list_models() if args.filter in n]:
        stats = model_stats(name, size)
        times = latency_ms(name, size, args.repeats)
        median = statistics.median(times)
        rows.append(
            [
                name,
                f"{stats.params / 1e6:.2f}",
                f"{stats.gflops:.1f}",
                f"{median:.0f}",
                f"{min(times):.0f}-{max(times):.0f}",
                f"{stats.gflops / median * 1e3:.0f}",
            ]
        )
        print(" ".join(rows[-1]), flush=True)
    command = (
        f"python bench/zoo.py --size {args.size} --threads {args.threads} "
        f"--repeats {args.repeats}" + (f" --filter {args.filter}" if args.filter else "")
    )
    body = "\n\n".join(
        [
            "## Model zoo: size, cost and eager fp32 CPU latency",
            f"Batch 1, {size[0]}x{size[1]}, 21 classes, fc6/fc7 width 4096, eval mode, "
            f"median of {args.repeats} runs after a warm-up. Machine: {machine_line()}.",
            f"Command: `{command}`",
            table(["model", "params (M)", "GFLOPs", "median ms", "range ms", "GFLOP/s"], rows),
        ]
    )
    print(f"wrote {write_section('zoo', body)}")


if __name__ == "__main__":
    main()
