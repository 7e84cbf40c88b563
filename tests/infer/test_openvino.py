"""The OpenVINO backends: the exported ONNX run by OpenVINO gives eager's masks at any size."""

from __future__ import annotations

import builtins

import pytest
import torch

from fcnlab.errors import FcnlabError
from fcnlab.infer.runtime import OpenVinoRunner, make_runner
from tests.checkpoints import tiny_model

pytest.importorskip("openvino")


@pytest.mark.parametrize("name", ["deeplabv3plus_mobilenet_v2", "fcn8s_vgg11"])
def test_openvino_agrees_with_eager_at_sizes_the_export_never_saw(name, one_thread):
    model = tiny_model(name)
    runner = make_runner(model, "openvino")
    assert runner.backend == "openvino"
    for size in ((97, 131), (64, 200)):
        x = torch.randn(2, 3, *size)
        with torch.inference_mode():
            want = model(x)
        got = runner(x)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert (got.argmax(1) == want.argmax(1)).float().mean() >= 0.995


def test_openvino_int8_needs_calibration():
    with pytest.raises(FcnlabError, match="openvino-int8 needs calibration images"):
        make_runner(tiny_model(), "openvino-int8")


def test_openvino_int8_runs_calibrated(one_thread):
    model = tiny_model()
    calibration = [torch.randn(1, 3, 64, 64) for _ in range(2)]
    runner = make_runner(model, "openvino-int8", calibration=calibration)
    assert runner.backend == "openvino-int8" and runner(torch.randn(1, 3, 80, 96)).shape[1] == 3


def test_a_missing_openvino_is_one_sentence(monkeypatch, tmp_path):
    real = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(FcnlabError, match=r"pip install 'fcnlab\[openvino\]'"):
        OpenVinoRunner(tmp_path / "model.onnx")


def test_a_damaged_file_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(FcnlabError, match="cannot be compiled by OpenVINO"):
        OpenVinoRunner(bad)
