"""The int8 companion: written at the end of training with its measured val mIoU delta,
recognised only while it belongs to its checkpoint, and measured by ``--backend auto``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fcnlab.cli import app
from fcnlab.export.onnx import read_metadata, write_metadata
from fcnlab.export.quality import INT8_KEY, file_sha256
from fcnlab.infer import Predictor
from fcnlab.infer.companion import companion_file, find_companion

TINY = [
    "model.width_mult=0.25",
    "data.options={length: 6, size: [32, 48]}",
    "data.crop_size=[32, 48]",
    "data.batch_size=2",
    "train.steps=4",
    "train.val_every=4",
    "train.report_samples=0",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("companion") / "run"
    args = ["train", "--out", str(run_dir)]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return run_dir, result.output


def test_training_writes_a_calibrated_int8_companion_with_its_val_delta(trained):
    run_dir, output = trained
    best, int8 = run_dir / "best.pt", run_dir / "best.int8.onnx"
    assert companion_file(best) == int8 and int8.is_file()
    assert "int8 companion: " in output and "int8 val mIoU" in output
    record = json.loads(read_metadata(int8)[INT8_KEY])
    assert record["source_sha256"] == file_sha256(best)
    assert record["calibration_images"] == 6 and record["val_images"] == 6
    assert 0 <= record["miou_int8"] <= 1 and 0 <= record["miou_fp32"] <= 1
    assert "fcnlab" in read_metadata(int8)  # the model card is still there


def test_the_companion_counts_only_while_it_is_its_checkpoints_and_accurate(trained, tmp_path):
    run_dir, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    companion = find_companion(copy / "best.pt")
    assert companion is not None and companion.file == copy / "best.int8.onnx"
    record = json.loads(read_metadata(companion.file)[INT8_KEY])
    write_metadata(companion.file, INT8_KEY, json.dumps({**record, "miou_int8": 0.0}))
    if record["miou_fp32"] > 0.005:
        assert find_companion(copy / "best.pt") is None  # costs more than 0.5 mIoU
    write_metadata(companion.file, INT8_KEY, json.dumps(record))
    with (copy / "best.pt").open("ab") as f:
        f.write(b"\0")  # another best.pt than the one it was made from
    assert find_companion(copy / "best.pt") is None
    assert find_companion(tmp_path / "missing.pt") is None


def test_backend_auto_measures_the_companion_with_the_others(trained, monkeypatch, tmp_path):
    run_dir, _ = trained
    monkeypatch.setenv("FCNLAB_AUTOTUNE", "1")
    lines: list[str] = []
    predictor = Predictor.load(run_dir / "best.pt", report=lines.append)
    predictor.predict(Image.fromarray(np.full((32, 48, 3), 100, np.uint8)))
    assert lines[0].startswith("int8 companion best.int8.onnx: val mIoU")
    assert lines[1].startswith("backend ")
    cache = json.loads((tmp_path / "fcnlab_cache" / "autotune.json").read_text())
    (entry,) = cache.values()
    assert "onnx-int8" in entry["median_ms"]


def test_export_int8_calibrates_on_the_checkpoints_own_data(trained, tmp_path):
    run_dir, _ = trained
    out = tmp_path / "m.int8.onnx"
    result = CliRunner().invoke(
        app, ["export", str(run_dir / "best.pt"), "--format", "onnx-int8", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "int8 val mIoU" in result.output and out.is_file()


def test_export_int8_without_data_or_calibration_says_what_to_pass(model_file, tmp_path):
    result = CliRunner().invoke(
        app, ["export", str(model_file), "--format", "onnx-int8", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "pass --calibration DIR (the checkpoint's own training data" in result.output
    assert list(tmp_path.iterdir()) == []


def test_no_companion_without_onnx_runtime(trained, monkeypatch, capsys):
    import importlib.util

    from fcnlab.cli import train as train_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    run_dir, _ = trained
    train_cli._int8_companion(run_dir / "best.pt")
    out = capsys.readouterr().out
    assert "int8 companion skipped: ONNX Runtime is not installed" in out
    assert "pip install 'fcnlab[onnx]'" in out  # brackets printed, not taken for markup
