"""The speed harness, ``fcnlab bench`` and ``bench/speed.py``, in tiny configurations.

Nothing here asserts a speed: only that the measurements exist, have the documented keys
and sane ranges, and that mistakes a user can make are reported as FcnlabError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fcnlab.bench import ROW_KEYS, Candidate, Ceilings, bench_models, fcnlab_candidate, harness
from fcnlab.bench.ceilings import conv_gflops, measure_ceilings
from fcnlab.bench.harness import expand_backends
from fcnlab.bench.timing import Timing, time_call
from fcnlab.cli import app
from fcnlab.cli import bench as command_module
from fcnlab.cli.bench import bench_command
from fcnlab.errors import FcnlabError
from fcnlab.hardware import bf16_is_native
from fcnlab.infer.runtime import BACKENDS, resolve_backend

REPO = Path(__file__).resolve().parents[2]
CEILINGS = Ceilings(fp32_gflops=100.0, bf16_gflops=400.0)
TINY = {"size": (64, 64), "repeats": 1, "warmup": 0, "ceilings": CEILINGS, "num_classes": 5}


def narrow_deeplab() -> Candidate:
    return fcnlab_candidate("deeplabv3plus_mobilenet_v2", width_mult=0.25)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cheap_ceilings(monkeypatch):
    """``fcnlab bench`` without measuring the real ceilings (seconds of 2048^3 GEMMs)."""
    monkeypatch.setattr(command_module, "measure_ceilings", lambda: CEILINGS)


def test_rows_have_every_key_and_sane_values():
    pytest.importorskip("onnxruntime")
    backends = ["eager", "channels_last", "bf16", "onnx"]
    rows = bench_models([narrow_deeplab()], backends=backends, **TINY)
    assert [r["backend"] for r in rows] == backends
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        assert row["error"] is None, row["error"]
        assert row["model"] == "deeplabv3plus_mobilenet_v2" and row["size"] == "64x64"
        assert row["median_ms"] > 0 and row["images_per_s"] > 0 and row["gflops"] > 0
        assert row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert 0.0 <= row["agreement"] <= 1.0 and row["max_abs_diff"] >= 0
        assert row["frac_bf16_ceiling"] == pytest.approx(row["frac_fp32_ceiling"] / 4)
    assert rows[0]["max_abs_diff"] == 0.0 and rows[0]["agreement"] == 1.0  # eager vs itself


def test_a_failing_backend_is_a_row_not_a_crash(monkeypatch):
    real = harness.make_runner

    def refuse_onnx(model, backend, *args, **kwargs):
        if backend == "onnx":
            raise RuntimeError("exporter unavailable")
        return real(model, backend, *args, **kwargs)

    monkeypatch.setattr(harness, "make_runner", refuse_onnx)
    eager, onnx = bench_models([narrow_deeplab()], backends=["eager", "onnx"], **TINY)
    assert eager["error"] is None and onnx["median_ms"] is None
    assert onnx["error"] == "RuntimeError: exporter unavailable"


def test_a_model_that_fails_gives_error_rows():
    def refuse(num_classes: int) -> torch.nn.Module:
        raise RuntimeError("package not installed")

    rows = bench_models([Candidate("peer/x", refuse, "peer")], backends=["eager", "bf16"], **TINY)
    assert [r["backend"] for r in rows] == ["eager", "bf16"]
    assert all("package not installed" in r["error"] for r in rows)


def test_a_model_returning_a_dict_is_read_by_its_out_entry():
    class DictModel(torch.nn.Module):  # like torchvision's segmentation models
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, num_classes, 3, padding=1)

        def forward(self, x):
            return {"out": self.conv(x)}

    backends = ["eager", "channels_last"]
    rows = bench_models([Candidate("peer/conv", DictModel, "peer")], backends=backends, **TINY)
    assert [r["error"] for r in rows] == [None, None]
    assert rows[1]["agreement"] == 1.0 and rows[1]["gflops"] > 0


def test_auto_rows_name_the_backend_auto_measured_fastest(monkeypatch):
    monkeypatch.setenv("FCNLAB_AUTOTUNE", "1")  # measured: conftest sets the rule otherwise
    monkeypatch.setenv("FCNLAB_AUTOTUNE_SKIP", "bf16,onnx,openvino")  # eager vs channels_last
    auto, eager = bench_models([narrow_deeplab()], backends=["auto", "eager"], **TINY)
    assert auto["backend"] == "auto" and auto["error"] is None
    assert auto["chosen"] in ("eager", "channels_last")
    assert harness.table_cells(auto)[1] == f"auto ({auto['chosen']})"
    assert eager["chosen"] is None and harness.table_cells(eager)[1] == "eager"


def test_backend_names_expand():
    assert expand_backends(["all"]) == list(BACKENDS)
    assert expand_backends(["best"]) == [resolve_backend("auto")]
    assert expand_backends(["eager", "all", "eager"]) == list(BACKENDS)
    with pytest.raises(FcnlabError, match="unknown backend 'fast'; choose one of: all, auto"):
        expand_backends(["fast"])
    with pytest.raises(FcnlabError, match="no backend given"):
        expand_backends([])


def test_bench_command_writes_json(tmp_path, cheap_ceilings):
    out = tmp_path / "bench.json"
    args = ["bench", "deeplabv3plus_mobilenet_v2", "--size", "64x64", "--backend", "eager"]
    args += ["--backend", "channels_last", "--repeats", "1", "--warmup", "0", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--threads", str(torch.get_num_threads())])
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.output
    document = json.loads(out.read_text())
    assert document["ceilings"]["fp32_gflops"] == 100.0
    assert document["machine"]["torch"] == torch.__version__
    assert document["machine"]["default_backend"] == resolve_backend("auto")
    for backend in ("eager", "channels_last"):
        entry = document["results"]["deeplabv3plus_mobilenet_v2"][backend]
        assert entry["median_ms"] > 0 and entry["error"] is None and "backend" not in entry
    # Not a terminal: the table is printed whole, one line per row, not wrapped to 80 columns.
    rows = [line for line in result.output.splitlines() if "deeplabv3plus_mobilenet_v2" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["eager", "channels_last"]
    assert max(map(len, result.output.splitlines())) > 80


def test_bench_path_is_a_deprecated_alias_of_backend(tmp_path, cheap_ceilings):
    out = tmp_path / "bench.json"
    args = ["bench", "deeplabv3plus_mobilenet_v2", "--size", "64x64", "--path", "eager"]
    args += ["--backend", "channels_last", "--repeats", "1", "--warmup", "0", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert notes == ["note: --path is deprecated; use --backend"]
    assert set(json.loads(out.read_text())["results"]["deeplabv3plus_mobilenet_v2"]) == {
        "eager",
        "channels_last",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["fcn8s_vgg99"]}, "unknown model"),
        ({"backend": ["fastest"]}, "unknown backend"),
        ({"size": "64by64"}, "size must look like HxW"),
        ({"repeats": 0}, "repeats must be at least 1"),
    ],
)
def test_bench_command_user_errors(kwargs, message, cheap_ceilings):
    arguments = {"models": ["deeplabv3plus_mobilenet_v2"], "size": "64x64", "backend": ["eager"]}
    with pytest.raises(FcnlabError, match=message):
        bench_command(**{**arguments, **kwargs})


def test_fcnlab_bench_reports_a_user_error_in_one_line(cheap_ceilings):
    result = CliRunner().invoke(app, ["bench", "fcn8s_vgg99", "--size", "64x64"])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "unknown model" in result.output


def test_timing_statistics():
    timing = Timing((4.0, 1.0, 3.0, 2.0), batch=2)
    assert timing.median_ms == 2.5 and timing.images_per_s == 800.0
    assert (timing.p25_ms, timing.p75_ms) == (1.75, 3.25)
    assert time_call(lambda: None, repeats=3, warmup=1).times_ms.__len__() == 3
    with pytest.raises(FcnlabError):
        time_call(lambda: None, repeats=0)


def test_ceilings_are_positive():
    ceilings = measure_ceilings(gemm_size=128, repeats=1, conv=False)
    assert ceilings.fp32_gflops > 0
    assert (ceilings.bf16_gflops is not None) == bf16_is_native("cpu")
    assert ceilings.bf16_gflops is None or ceilings.bf16_gflops > 0


def test_bf16_ceilings_are_skipped_where_bf16_is_emulated(monkeypatch):
    import fcnlab.bench.ceilings as module

    monkeypatch.setattr(module, "bf16_is_native", lambda device: False)
    monkeypatch.setattr(
        module, "gemm_gflops", lambda dtype, *a: 1.0 if dtype == torch.float32 else 1 / 0
    )
    ceilings = measure_ceilings(gemm_size=64, repeats=1, conv=False)
    assert ceilings.fp32_gflops == 1.0 and ceilings.bf16_gflops is None
    assert conv_gflops(torch.float32, channels=8, size=16, repeats=1) > 0
    assert conv_gflops(torch.bfloat16, channels=8, size=16, repeats=1) > 0


def test_speed_script_runs_tiny(tmp_path):
    doc, out = tmp_path / "benchmarks.md", tmp_path / "speed.json"
    doc.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    args = ["--size", "64x64", "--repeats", "1", "--warmup", "0", "--threads", "1"]
    args += ["--gemm-size", "128", "--no-conv-ceiling", "--backends", "eager", "channels_last"]
    args += ["--models", "deeplabv3plus_mobilenet_v2", "torchvision/deeplabv3_mobilenet_v3_large"]
    args += ["--doc", str(doc), "--json", str(out)]
    result = subprocess.run(
        [sys.executable, "bench/speed.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = doc.read_text()
    assert "<!-- speed:start -->" in text and "kept" in text
    assert "| torchvision/deeplabv3_mobilenet_v3_large | channels_last |" in text
    assert "Command: `python bench/speed.py --size 64x64" in text
    results = json.loads(out.read_text())["results"]
    assert results["deeplabv3plus_mobilenet_v2"]["eager"]["median_ms"] > 0
