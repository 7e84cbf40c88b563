"""The OpenVINO backends: the exported ONNX run by OpenVINO gives eager's masks at any size."""

from __future__ import annotations

import builtins

import pytest
import torch

from fcnlab.errors import FcnlabError
from fcnlab.hardware import bf16_is_native, isa_cap
from fcnlab.infer.runtime import OpenVinoRunner, default_candidates, make_runner
from tests.checkpoints import tiny_model

pytest.importorskip("openvino")

#: Runs OpenVINO for real, which fcnlab refuses under an ISA cap (see the cap's test below).
uncapped = pytest.mark.skipif(isa_cap() is not None, reason="ONEDNN_MAX_CPU_ISA is set")


@uncapped
@pytest.mark.parametrize(
    "name", ["deeplabv3plus_mobilenet_v2", "fcn8s_vgg11", "fcn8s_efficientnet_lite0"]
)
def test_openvino_agrees_with_eager_at_sizes_the_export_never_saw(name, one_thread):
    model = tiny_model(name)
    runner = make_runner(model, "openvino")
    assert runner.backend == "openvino"
    # OpenVINO computes in bf16 by itself where bf16 is native (AMX): random weights, whose
    # logits sit close together, then flip more pixels (seen: 97.5-99.3% for EfficientNet,
    # depending on the input). A size or padding error would agree on about a third.
    minimum = 0.95 if bf16_is_native() else 0.995
    for size in ((97, 131), (64, 200)):
        x = torch.randn(2, 3, *size)
        with torch.inference_mode():
            want = model(x)
        got = runner(x)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert (got.argmax(1) == want.argmax(1)).float().mean() >= minimum


def test_openvino_int8_needs_calibration():
    with pytest.raises(FcnlabError, match="openvino-int8 needs calibration images"):
        make_runner(tiny_model(), "openvino-int8")


@uncapped
def test_openvino_int8_runs_calibrated(one_thread):
    model = tiny_model()
    calibration = [torch.randn(1, 3, 64, 64) for _ in range(2)]
    runner = make_runner(model, "openvino-int8", calibration=calibration)
    assert runner.backend == "openvino-int8" and runner(torch.randn(1, 3, 80, 96)).shape[1] == 3


@pytest.fixture
def no_cap(monkeypatch):
    """The refusal under an ISA cap comes first; these tests are about what follows it."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


def test_a_missing_openvino_is_one_sentence(monkeypatch, tmp_path, no_cap):
    real = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(FcnlabError, match=r"pip install 'fcnlab\[openvino\]'"):
        OpenVinoRunner(tmp_path / "model.onnx")


def test_a_damaged_file_is_one_sentence(tmp_path, no_cap):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(FcnlabError, match="cannot be compiled by OpenVINO"):
        OpenVinoRunner(bad)


def test_under_an_isa_cap_openvino_is_refused_and_never_measured(monkeypatch, tmp_path):
    # Seen with OpenVINO 2026.4 on an AMX Xeon with ONEDNN_MAX_CPU_ISA=AVX2: fp32 returned
    # 0 x 3 x 0 x 0 logits and int8 crashed the process.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(FcnlabError, match=r"ONEDNN_MAX_CPU_ISA=AVX2.*unset the variable"):
        OpenVinoRunner(tmp_path / "model.onnx")
    monkeypatch.setenv("FCNLAB_AUTOTUNE_SKIP", "")
    assert not any(name.startswith("openvino") for name in default_candidates(tiny_model()))


@uncapped
def test_logits_of_the_wrong_shape_are_an_error_not_a_result(monkeypatch, one_thread):
    runner = make_runner(tiny_model(), "openvino")

    class EmptyRequest:
        def infer(self, inputs):
            return {0: torch.zeros(0, 3, 0, 0).numpy()}

    runner.request = EmptyRequest()
    with pytest.raises(FcnlabError, match=r"shape \(0, 3, 0, 0\) for an input of shape"):
        runner(torch.randn(1, 3, 32, 32))


@uncapped
def test_a_repeated_shape_gets_a_static_compilation_with_the_same_logits(one_thread):
    from fcnlab.infer.openvino_runner import STATIC_SHAPES

    runner = make_runner(tiny_model(), "openvino")
    shapes = [(1, 3, 64 + 32 * k, 96) for k in range(STATIC_SHAPES + 1)]
    inputs = {shape: torch.randn(shape) for shape in shapes}
    first = {shape: runner(x) for shape, x in inputs.items()}  # dynamic: seen once each
    assert not runner.static
    for shape, x in inputs.items():  # second sightings: static, the oldest dropped
        # The same up to OpenVINO's own precision (bf16 inside on AMX/AVX512-BF16 CPUs).
        torch.testing.assert_close(runner(x), first[shape], rtol=0, atol=1e-2)
        assert shape in runner.static and len(runner.static) <= STATIC_SHAPES
    assert list(runner.static) == shapes[-STATIC_SHAPES:]


@uncapped
def test_autotune_timing_prepares_the_static_shape_before_the_first_call(one_thread):
    from fcnlab.infer.autotune import time_runner

    runner = make_runner(tiny_model(), "openvino")
    events: list[str] = []
    compile_static, request_for = runner._compile_static, runner._request_for
    runner._compile_static = lambda shape: events.append("compile") or compile_static(shape)
    runner._request_for = lambda shape: events.append("call") or request_for(shape)
    x = torch.randn(1, 3, 64, 96)
    time_runner(runner, x, budget_s=0.0)
    # Compiled once, before the warm-up call: no timed call pays for a compilation.
    assert events[0] == "compile" and events[1:] == ["call"] * (len(events) - 1)
    assert list(runner.static) == [tuple(x.shape)]
