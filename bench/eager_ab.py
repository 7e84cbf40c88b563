"""Same architecture, eager fp32: fcnlab vs the peer, timed interleaved (A, B, A, B, ...).

    python bench/eager_ab.py --size 512x512 --threads 2 --repeats 9

speed.py times each model's backends one after the other; on a shared host whose speed drifts
by 10-20% over minutes, a sequential pair of medians can differ by that drift alone. Here
every call of one model is followed by a call of the other on the same input, so both see
the same machine; the ratio of the medians is the comparison of goal (a). Writes the
"eager_ab" section of docs/benchmarks.md (``--doc``).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.bench.harness import normalised_images, tensor_output
from fcnlab.cli import parse_size
from peers import PEERS
from speed import SAME_ARCHITECTURE, candidate


def interleaved(a, b, x: torch.Tensor, repeats: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``repeats`` alternating calls of ``a`` and ``b`` (after one each)."""
    times: tuple[list[float], list[float]] = ([], [])
    with torch.inference_mode():
        a(x), b(x)
        for i in range(2 * repeats):
            model = (a, b)[i % 2]
            start = time.perf_counter()
            tensor_output(model(x))
            times[i % 2].append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=parse_size, default="512x512")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/eager_ab.py", *sys.argv[1:]])
    x = normalised_images(1, args.size, seed=0)
    rows = []
    for ours, peer in SAME_ARCHITECTURE.items():
        torch.manual_seed(0)
        a = candidate(ours).build(21).eval()
        b = PEERS[peer].build(21).eval()
        ta, tb = interleaved(a, b, x, args.repeats)
        ma, mb = statistics.median(ta), statistics.median(tb)
        rows.append([ours, f"{ma:.1f}", peer, f"{mb:.1f}", f"**{mb / ma:.2f}x**"])
        print(*rows[-1], flush=True)
    body = "\n\n".join(
        [
            "## Eager fp32, same architecture, interleaved timing",
            f"Batch 1, {args.size[0]}x{args.size[1]}, 21 classes, random weights; "
            f"{args.repeats} calls of each model, alternating, after one untimed call each; "
            f"medians. Ratio > 1: fcnlab is faster. Machine: {machine_line()}. "
            f"Command: `{command}`",
            table(["fcnlab", "median ms", "peer", "median ms", "fcnlab speed / peer"], rows),
        ]
    )
    print(f"wrote {write_section('eager_ab', body, args.doc)}")


if __name__ == "__main__":
    main()
