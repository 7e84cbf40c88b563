"""Inference engines on the same ONNX files: ONNX Runtime vs OpenVINO, fp32 and int8, and
why fcnlab's DeepLabv3+ graph runs slower in ONNX Runtime than smp's.

    python bench/engines.py --size 512x512 --threads 2 --rounds 7

For each model (fcnlab's DeepLabv3+ MobileNetV2 and FCN-8s ResNet-18, smp's DeepLabV3+
MobileNetV2 when installed) the script exports ONNX once with dynamic height/width (as
``fcnlab export`` does) and once with a static 1x3xHxW shape, quantises the dynamic file to
int8 QDQ with ONNX Runtime (calibrated on 8 random batches), then times, interleaved over
``--rounds`` rounds (one call each per round, after warm-up, the median reported):

- ``ort``: ONNX Runtime fp32, all graph optimisations; ``ort-static``: the same on the
  static-shape export (do dynamic shapes block fusions?);
- ``ort-int8``: ONNX Runtime on the QDQ file;
- ``ov``: OpenVINO on the dynamic ONNX file with its default precision hint (bf16 where the
  CPU has AMX/AVX512-BF16, fp32 elsewhere); ``ov-f32``: the same forced to fp32;
  ``ov-int8``: OpenVINO on the QDQ file (``pip install openvino``; rows are skipped without).

It also counts each graph's node types after ONNX Runtime's optimiser, so differences in
what was fused are visible. Writes the "engines" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.cli import parse_size
from fcnlab.export.onnx import INPUT, OPSET, OUTPUT, export_onnx_model
from fcnlab.export.quantize import quantize_onnx
from fcnlab.models import create_model
from peers import PEERS, smp_available

MODELS = ("deeplabv3plus_mobilenet_v2", "fcn8s_resnet18", "smp/deeplabv3plus_mobilenet_v2")


def build(name: str) -> torch.nn.Module:
    model = PEERS[name].build(21) if name in PEERS else create_model(name, 21)
    return model.eval()


class Plain(torch.nn.Module):
    """A peer whose forward returns a dict: its logits tensor only."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out["out"] if isinstance(out, dict) else out


def export_static(model: torch.nn.Module, out: Path, hw: tuple[int, int]) -> Path:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Plain(model), (torch.zeros(1, 3, *hw),), str(out), input_names=[INPUT],
            output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    return out


def ort_session(path: Path, threads: int, optimized: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def ov_model(path: Path, threads: int, precision: str | None):
    try:
        import openvino as ov
    except ImportError:
        return None
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})[0]


def node_types(optimized: Path) -> collections.Counter:
    import onnx

    graph = onnx.load(str(optimized), load_external_data=False).graph
    return collections.Counter(node.op_type for node in graph.node)


def engines_for(name: str, hw: tuple[int, int], threads: int, tmp: Path) -> dict:
    model = build(name)
    stem = name.replace("/", "_")
    dynamic = export_onnx_model(Plain(model), tmp / f"{stem}.onnx")
    static = export_static(model, tmp / f"{stem}.static.onnx", hw)
    calibration = [torch.randn(1, 3, *hw) for _ in range(8)]
    int8 = quantize_onnx(dynamic, tmp / f"{stem}.int8.onnx", calibration)
    runners = {
        "ort": ort_session(dynamic, threads, tmp / f"{stem}.opt.onnx"),
        "ort-static": ort_session(static, threads, tmp / f"{stem}.static.opt.onnx"),
        "ort-int8": ort_session(int8, threads),
        "ov": ov_model(dynamic, threads, None),
        "ov-f32": ov_model(dynamic, threads, "f32"),
        "ov-int8": ov_model(int8, threads, None),
    }
    ops = {
        "dynamic": node_types(tmp / f"{stem}.opt.onnx"),
        "static": node_types(tmp / f"{stem}.static.opt.onnx"),
    }
    return {"runners": {k: v for k, v in runners.items() if v is not None}, "ops": ops}


def interleaved(runners: dict, x: np.ndarray, rounds: int, warmup: int = 2) -> dict[str, float]:
    reference = runners["ort"](x)
    agreement = {}
    for name, run in runners.items():
        for _ in range(warmup):
            out = run(x)
        agreement[name] = float((out.argmax(1) == reference.argmax(1)).mean())
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {n: (statistics.median(t), agreement[n]) for n, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="512x512", type=parse_size)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/engines.py", *(sys.argv[1:] if argv is None else argv)])
    names = [m for m in args.models if not m.startswith("smp/") or smp_available()]
    x = torch.randn(1, 3, *args.size).numpy()
    rows, op_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            found = engines_for(name, args.size, args.threads, Path(tmp))
            result = interleaved(found["runners"], x, args.rounds)
            ort_ms = result["ort"][0]
            for engine, (ms, agree) in result.items():
                rows.append([name, engine, f"{ms:.1f}", f"{ort_ms / ms:.2f}", f"{100 * agree:.2f}"])
                print(" | ".join(rows[-1]), flush=True)
            for kind, ops in found["ops"].items():
                top = ", ".join(f"{op} {n}" for op, n in ops.most_common(8))
                op_rows.append([name, kind, str(sum(ops.values())), top])
    body = "\n\n".join(
        [
            "## Engines: ONNX Runtime vs OpenVINO on the same ONNX files",
            f"Batch 1, {'x'.join(map(str, args.size))}, 21 classes, random weights; "
            f"interleaved medians of {args.rounds} rounds. Speed: ONNX Runtime fp32's latency / "
            "this engine's (> 1: faster). Agreement: pixels whose arg-max equals ORT fp32's. "
            f"Machine: {machine_line()}.",
            f"Command: `{command}`",
            table(["model", "engine", "ms", "speed vs ort", "agreement %"], rows),
            "Graphs after ONNX Runtime's optimiser (node count, most common node types):",
            table(["model", "export", "nodes", "most common"], op_rows),
        ]
    )
    print(f"wrote {write_section('engines', body, args.doc)}")


if __name__ == "__main__":
    main()
