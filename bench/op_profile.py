"""Where the time goes: torch.profiler's operator tables, inference and training.

    python bench/op_profile.py --models deeplabv3plus_mobilenet_v2 fcn8s_vgg16 --backend bf16

Each model runs at ``--size`` (batch 1) on ``--backend`` through fcnlab's runner (BN folded,
channels_last, bf16 autocast for ``bf16``), warmed up, then ``--repeats`` calls under the
profiler; the table lists the operators with the most self CPU time. Writes the "profile"
section of docs/benchmarks.md (``--doc``). ``--train MODEL...`` adds the same table for
training steps (forward, cross-entropy, backward, AdamW) in bf16 + channels_last.
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
from fcnlab.infer.runtime import TORCH_BACKENDS, make_runner
from fcnlab.models import create_model


def top_operators(model_name: str, backend: str, size, repeats: int, rows: int) -> list[list]:
    """[operator, self CPU ms per call, share of the total %, calls per run] rows."""
    torch.manual_seed(0)
    runner = make_runner(create_model(model_name, 21).eval(), backend)
    x = normalised_images(1, size, seed=0)
    return _profiled(lambda: runner(x), repeats, rows)


def train_step_operators(model_name: str, size, batch: int, repeats: int, rows: int):
    """The same table for training steps (forward, loss, backward, AdamW) in bf16 + NHWC."""
    torch.manual_seed(0)
    model = create_model(model_name, 11).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = normalised_images(batch, size, seed=0).to(memory_format=torch.channels_last)
    target = torch.randint(0, 11, (batch, *size))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return _profiled(step, repeats, rows)


def _profiled(fn, repeats: int, rows: int) -> list[list]:
    for _ in range(2):
        fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            fn()
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
    p.add_argument("--backend", default="bf16", choices=TORCH_BACKENDS)
    p.add_argument("--size", type=parse_size, default="512x512")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", nargs="*", default=[], help="models to profile a training step of")
    p.add_argument("--train-size", type=parse_size, default="180x240")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/op_profile.py", *sys.argv[1:]])
    parts = [
        "## Profile: where the time goes",
        f"Batch 1, {args.size[0]}x{args.size[1]}, 21 classes, backend {args.backend}, self CPU "
        f"time per run averaged over {args.repeats} runs. Machine: {machine_line()}. "
        f"Command: `{command}`",
    ]
    for name in args.models:
        rows = top_operators(name, args.backend, args.size, args.repeats, args.rows)
        print(name, *rows, sep="\n")
        parts += [f"### {name}", table(["operator", "ms per run", "% of run", "calls"], rows)]
    for name in args.train:
        rows = train_step_operators(
            name, args.train_size, args.train_batch, args.repeats, args.rows
        )
        print(name, "train", *rows, sep="\n")
        h, w = args.train_size
        heading = f"### {name}, training step {args.train_batch}x{h}x{w}, bf16 + channels_last"
        parts += [heading, table(["operator", "ms per step", "% of step", "calls"], rows)]
    written = write_section("profile", "\n\n".join(parts), args.doc)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
