"""DDP's per-step communication overhead: the same step with and without gradient all-reduce.

    OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 bench/ddp_overhead.py --size 256x256

Run under torchrun. In one job, every rank times a training step (forward, loss, backward,
SGD step) of each model on a random batch of ``--batch`` images, alternately inside DDP's
``no_sync()`` (no communication) and as a normal DDP step (gradients all-reduced, overlapped
with the backward pass); the difference is the overhead one step pays for communication, under
identical load. It also times a bare ``all_reduce`` of one buffer of the gradients' size. Each
figure is the median over ``--repeats`` (after ``--warmup`` untimed steps) of the slowest rank.
Rank 0 prints the table and writes it into docs/benchmarks.md (section ``ddp`` for gloo on CPU,
``ddp_cuda`` for NCCL).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from benchdoc import machine_line, table, write_section
from fcnlab.cli import parse_size
from fcnlab.engine import distributed
from fcnlab.models import create_model

DEFAULT_MODELS = "fcn8s_mobilenet_v2,deeplabv3plus_mobilenet_v2,fcn8s_resnet18,deeplabv3_resnet50"


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Milliseconds of ``fn`` on the slowest rank, all ranks starting together."""
    dist.barrier()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = torch.tensor([(time.perf_counter() - start) * 1e3], device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return elapsed.item()


def step_times(name: str, args, device: torch.device) -> tuple[int, float, float]:
    """(parameters, median ms without communication, median ms of a DDP step)."""
    torch.manual_seed(0)
    net = create_model(name, num_classes=21).to(device)
    model = DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(args.batch, 3, *args.size, device=device)
    masks = torch.randint(0, 21, (args.batch, *args.size), device=device)

    def step(sync: bool) -> None:
        with nullcontext() if sync else model.no_sync():
            out = model(images)
            out = out["out"] if isinstance(out, dict) else out
            F.cross_entropy(out, masks).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step(True)
    local, synced = [], []
    for _ in range(args.repeats):  # alternate, so drift in machine load hits both alike
        local.append(timed(lambda: step(False), device))
        synced.append(timed(lambda: step(True), device))
    params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return params, statistics.median(local), statistics.median(synced)


def all_reduce_ms(numel: int, args, device: torch.device) -> float:
    buffer = torch.randn(numel, device=device)
    for _ in range(args.warmup):
        dist.all_reduce(buffer)
    return statistics.median(
        timed(lambda: dist.all_reduce(buffer), device) for _ in range(args.repeats)
    )


def measure(args, device: torch.device) -> list[list[str]]:
    rows, world = [], dist.get_world_size()
    for name in args.models.split(","):
        params, local, synced = step_times(name, args, device)
        reduce_ms = all_reduce_ms(params, args, device)
        megabytes = params * 4 / 1e6
        # Ring all-reduce moves 2 (n - 1) / n of the buffer through each rank ("bus bandwidth").
        bus_gb_s = megabytes * 2 * (world - 1) / world / reduce_ms
        overhead = synced - local
        rows.append(
            [
                name,
                f"{params / 1e6:.2f}",
                f"{megabytes:.1f}",
                f"{local:.0f}",
                f"{synced:.0f}",
                f"{overhead:+.0f} ({100 * overhead / local:+.0f}%)",
                f"{reduce_ms:.1f}",
                f"{bus_gb_s:.2f}",
            ]
        )
        if dist.get_rank() == 0:
            print(" | ".join(rows[-1]), flush=True)
    return rows


def report(args, rows: list[list[str]], device: torch.device) -> str:
    backend, world = dist.get_backend(), dist.get_world_size()
    command = (
        f"OMP_NUM_THREADS={torch.get_num_threads()} torchrun --nproc-per-node {world} "
        f"bench/ddp_overhead.py --models {args.models} --size {args.size[0]}x{args.size[1]} "
        f"--batch {args.batch} --repeats {args.repeats} --warmup {args.warmup} "
        f"--device {device.type}"
    )
    header = ["model", "params (M)", "grads MB", "step ms, no sync", "step ms, DDP"]
    header += ["communication ms", "all_reduce ms", "bus GB/s"]
    return "\n\n".join(
        [
            f"## DDP communication overhead per step ({backend}, {world} processes)",
            f"Per process: batch {args.batch}, {args.size[0]}x{args.size[1]}, 21 classes, "
            f"fp32, SGD, on {device.type}. Step = forward, loss, backward, optimizer step; "
            "'no sync' runs it inside DDP's no_sync() (no gradient all-reduce). Medians of "
            f"{args.repeats} steps of the slowest rank after {args.warmup} warm-up steps. "
            f"Machine: {machine_line()}, {world} processes.",
            f"Command: `{command}`",
            table(header, rows),
            "To measure scaling on a GPU node, see docs/distributed.md "
            '("Measuring scaling on a GPU node").',
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names")
    parser.add_argument("--size", default="256x256", help="HxW per image")
    parser.add_argument("--batch", type=int, default=2, help="images per process")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    args = parser.parse_args()
    args.size = parse_size(args.size)
    ctx = distributed.setup(args.device)
    if not ctx.distributed:
        raise SystemExit(
            "ddp_overhead needs several processes: OMP_NUM_THREADS=1 torchrun "
            "--nproc-per-node 2 bench/ddp_overhead.py"
        )
    try:
        rows = measure(args, ctx.device)
        if ctx.is_main:
            body = report(args, rows, ctx.device)
            print(body)
            if not args.no_write:
                section = "ddp" if ctx.device.type == "cpu" else "ddp_cuda"
                print(f"wrote {write_section(section, body)}")
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()
