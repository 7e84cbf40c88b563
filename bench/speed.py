"""Speed side by side: fcnlab and peer models on every execution backend, in one process.

    python bench/speed.py --size 512x512 --threads 2 --repeats 5

First the machine's ceilings (fp32 and bf16 GEMM, 3x3 conv), then every model of
``--models`` (fcnlab names, or peers from ``peers.py``: ``smp/...``, ``torchvision/...``,
``reference/fcn8s_vgg16``) on every backend of ``--backends`` through fcnlab's harness
(``fcnlab.bench.harness.bench_models``): the same random input, the same runners and the
same timing for all. Then the goal ratios, all from this one run:

(a) fcnlab eager fp32 vs the peer's eager fp32, same architecture;
(b) fcnlab's default backend for deeplabv3plus_mobilenet_v2 vs smp's fastest backend;
(c) fcn8s_vgg16's fastest float backend as a fraction of the GEMM ceiling of its precision.

Writes the "speed" section of docs/benchmarks.md (``--doc`` elsewhere), ``--json`` too.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.bench.ceilings import Ceilings, measure_ceilings
from fcnlab.bench.harness import (
    TABLE_HEADER,
    Candidate,
    bench_models,
    fcnlab_candidate,
    table_cells,
)
from fcnlab.bench.report import results_json
from fcnlab.cli import parse_size
from fcnlab.hardware import bf16_is_native
from fcnlab.infer.runtime import BACKENDS, resolve_backend
from peers import PEERS, smp_available

DEFAULT_MODELS = (
    "deeplabv3plus_mobilenet_v2",
    "smp/deeplabv3plus_mobilenet_v2",
    "smp/deeplabv3plus_resnet50",
    "torchvision/deeplabv3_mobilenet_v3_large",
    "fcn8s_vgg16",
    "reference/fcn8s_vgg16",
)
#: fcnlab model -> the peer implementing the same architecture, for goal (a).
SAME_ARCHITECTURE = {
    "deeplabv3plus_mobilenet_v2": "smp/deeplabv3plus_mobilenet_v2",
    "fcn8s_vgg16": "reference/fcn8s_vgg16",
}


def candidate(name: str) -> Candidate:
    return PEERS[name] if name in PEERS else fcnlab_candidate(name)


def find(rows: list[dict], model: str, backend: str) -> dict | None:
    """The successful row of ``model`` on ``backend``, if any."""
    return next(
        (r for r in rows if r["model"] == model and r["backend"] == backend and not r["error"]),
        None,
    )


def fastest(rows: list[dict], model: str) -> dict | None:
    done = [r for r in rows if r["model"] == model and not r["error"]]
    return min(done, key=lambda r: r["median_ms"], default=None)


def speed_ratio(ours: dict | None, theirs: dict | None, what: str) -> str:
    """``what``: how many times the peer's latency fcnlab's is (>1: fcnlab is faster)."""
    if ours is None or theirs is None:
        return f"{what}: not measured (a row is missing or failed)."
    ratio = theirs["median_ms"] / ours["median_ms"]
    return (
        f"{what}: {ours['model']} {ours['backend']} {ours['median_ms']:.1f} ms vs "
        f"{theirs['model']} {theirs['backend']} {theirs['median_ms']:.1f} ms: fcnlab runs at "
        f"**{ratio:.2f}x** the peer's speed."
    )


def goal_lines(rows: list[dict], ceilings: Ceilings) -> list[str]:
    """The goal ratios (a), (b), (c) of the module docstring, one markdown line each."""
    lines = [
        speed_ratio(find(rows, ours, "eager"), find(rows, peer, "eager"), f"(a) {ours}, eager")
        for ours, peer in SAME_ARCHITECTURE.items()
    ]
    best, smp = resolve_backend("auto"), "smp/deeplabv3plus_mobilenet_v2"
    ours = find(rows, "deeplabv3plus_mobilenet_v2", best)
    what = f"(b) deeplabv3plus_mobilenet_v2, fcnlab's default backend ({best}) vs smp's fastest"
    lines.append(speed_ratio(ours, fastest(rows, smp), what))
    lines.append(speed_ratio(ours, find(rows, smp, "onnx"), "(b) the same vs smp on onnx"))
    # auto is a choice among the backends, not one: its row's precision is the chosen one's.
    floats = [r for r in rows if not r["backend"].endswith("int8") and r["backend"] != "auto"]
    top = fastest(floats, "fcn8s_vgg16")
    if top is None:
        lines.append("(c) fcn8s_vgg16: not measured.")
    else:
        lines.append(ceiling_share(top, ceilings))
    return [f"- {line}" for line in lines]


def precision_of(backend: str) -> str:
    """The arithmetic a backend runs in: OpenVINO picks bf16 by itself where bf16 is native."""
    if "bf16" in backend or (backend == "openvino" and bf16_is_native()):
        return "bf16"
    return "fp32"


def ceiling_share(row: dict, ceilings: Ceilings) -> str:
    """(c): the fastest float backend of fcn8s_vgg16 against the GEMM ceiling of its
    precision."""
    kind = precision_of(row["backend"])
    if kind == "bf16" and ceilings.bf16_gflops is not None:
        ceiling, share = ceilings.bf16_gflops, row["frac_bf16_ceiling"]
    else:
        kind, ceiling, share = "fp32", ceilings.fp32_gflops, row["frac_fp32_ceiling"]
    return (
        f"(c) fcn8s_vgg16, fastest float backend ({row['backend']}, {kind}): "
        f"{row['achieved_gflops']:.0f} GFLOP/s = **{100 * share:.0f}%** of the {kind} GEMM "
        f"ceiling ({ceiling:.0f} GFLOP/s); int8 backends are not compared with a float ceiling."
    )


def ceiling_line(c: Ceilings) -> str:
    conv = ""
    if c.conv_fp32_gflops is not None:
        conv = f"; 3x3 conv 256->256 at 128x128: fp32 {c.conv_fp32_gflops:.0f}"
        if c.conv_bf16_gflops is not None:
            conv += f", bf16 channels_last {c.conv_bf16_gflops:.0f}"
        conv += " GFLOP/s"
    bf16 = (
        f"bf16 **{c.bf16_gflops:.0f}** GFLOP/s"
        if c.bf16_gflops is not None
        else "bf16 not measured (not native on this CPU)"
    )
    return (
        f"Ceilings: {c.gemm_size}x{c.gemm_size} GEMM fp32 **{c.fp32_gflops:.0f}** GFLOP/s, "
        f"{bf16}{conv}."
    )


def render(args: argparse.Namespace, rows: list[dict], ceilings: Ceilings, command: str) -> str:
    size = "x".join(map(str, args.size))
    cells = [[*table_cells(r), f"{r['prepare_s']:.1f}" if r["prepare_s"] else ""] for r in rows]
    notes = [] if smp_available() else ["segmentation_models_pytorch is not installed here."]
    goals = ["Goals (from this run):", "\n".join(goal_lines(rows, ceilings))] if args.goals else []
    return "\n\n".join(
        [
            f"## {args.title}",
            f"Batch {args.batch}, {size}, 21 classes, random weights, the same input for all; "
            f"median of {args.repeats} runs after a checked first run and {args.warmup} "
            f"warm-up. Agreement: pixels whose arg-max class equals the same model's eager "
            f"fp32 output. fcnlab's default backend here: {resolve_backend('auto')}. "
            f"Machine: {machine_line()}.",
            f"Command: `{command}`",
            ceiling_line(ceilings),
            table([*TABLE_HEADER, "prepare s"], cells),
            *goals,
            *notes,
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="512x512", type=parse_size)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument(
        "--backends", nargs="+", default=["auto", *BACKENDS], help="backend names, or all"
    )
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--gemm-size", type=int, default=2048, help="GEMM ceiling matrix size")
    p.add_argument("--conv-ceiling", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--doc", type=Path, default=DOC, help="markdown file to write the section to")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--section", default="speed", help="the section of --doc to (re)write")
    p.add_argument("--title", default="Speed: fcnlab vs peers on every execution backend")
    p.add_argument("--goals", action=argparse.BooleanOptionalAction, default=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/speed.py", *(sys.argv[1:] if argv is None else argv)])
    candidates = [candidate(name) for name in args.models]
    ceilings = measure_ceilings(args.gemm_size, conv=args.conv_ceiling)
    print(ceiling_line(ceilings), flush=True)
    rows = bench_models(
        candidates,
        args.size,
        args.batch,
        args.backends,
        args.repeats,
        args.warmup,
        ceilings=ceilings,
        on_row=lambda row: print(" | ".join(table_cells(row)), flush=True),
    )
    for line in goal_lines(rows, ceilings) if args.goals else []:
        print(line)
    if args.json is not None:
        settings: dict[str, Any] = {"size": list(args.size), "batch": args.batch}
        settings.update(repeats=args.repeats, warmup=args.warmup, command=command)
        args.json.write_text(json.dumps(results_json(rows, ceilings, settings), indent=1))
    section = render(args, rows, ceilings, command)
    print(f"wrote {write_section(args.section, section, args.doc)}")


if __name__ == "__main__":
    main()
