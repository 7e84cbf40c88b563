"""Where the time goes: torch.profiler's operator table for models on a torch path.

    python bench/op_profile.py --models deeplabv3plus_mobilenet_v2 fcn8s_vgg16 --path bf16

Each model runs at ``--size`` (batch 1) on ``--path`` through fcnlab's runner (BN folded,
channels_last, bf16 autocast for ``bf16``), warmed up, then ``--repeats`` calls under the
profiler; the table lists the operators with the most self CPU time. Writes the "profile"
section of docs/benchmarks.md (``--doc``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.bench.harness import normalised_images
from fcnlab.cli import parse_size
from fcnlab.infer.runtime import TORCH_PATHS, make_runner
from fcnlab.models import create_model


def top_operators(model_name: str, path: str, size, repeats: int, rows: int) -> list[list]:
    """[operator, self CPU ms per call, share of the total %, calls per run] rows."""
    torch.manual_seed(0)
    runner = make_runner(create_model(model_name, 21).eval(), path)
    x = normalised_images(1, size, seed=0)
    for _ in range(2):
        runner(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            runner(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [
        [
            e.key,
            f"{e.self_cpu_time_total / repeats / 1e3:.1f}",
            f"{100 * e.self_cpu_time_total / total:.1f}",
            f"{e.count / repeats:.0f}",
        ]
        for e in ranked
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["deeplabv3plus_mobilenet_v2"])
    p.add_argument("--path", default="bf16", choices=TORCH_PATHS)
    p.add_argument("--size", type=parse_size, default="512x512")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/op_profile.py", *sys.argv[1:]])
    parts = [
        "## Profile: where the time goes",
        f"Batch 1, {args.size[0]}x{args.size[1]}, 21 classes, path {args.path}, self CPU "
        f"time per run averaged over {args.repeats} runs. Machine: {machine_line()}. "
        f"Command: `{command}`",
    ]
    for name in args.models:
        rows = top_operators(name, args.path, args.size, args.repeats, args.rows)
        print(name, *rows, sep="\n")
        parts += [f"### {name}", table(["operator", "ms per run", "% of run", "calls"], rows)]
    written = write_section("profile", "\n\n".join(parts), args.doc)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
