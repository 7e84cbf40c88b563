"""Bad options of predict, export and serve: exit 2, one ``error:`` line, never a traceback."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

import fcnlab.serve.server as server
from fcnlab.cli import app

runner = CliRunner()

CASES = [
    (["predict", "--batch", "0"], "--batch must be at least 1, not 0."),
    (["predict", "--batch", "-3"], "--batch must be at least 1, not -3."),
    (["predict", "--overlap", "0.9"], "--overlap 0.9 must be between 0 and 0.75."),
    (["predict", "--overlap", "-0.5"], "--overlap -0.5 must be between 0 and 0.75."),
    (["predict", "--tile", "1x1"], "--tile 1x1 is too small; each side must be at least 32."),
    (["predict", "--tile", "512x8"], "--tile 512x8 is too small"),
    (["predict", "--max-memory-mb", "1"], "--max-memory-mb must be at least 16, not 1."),
    (["export", "--calibration-count", "0"], "--calibration-count must be at least 1, not 0."),
    (["serve", "--port", "99999"], "--port must be between 1 and 65535, not 99999."),
    (["serve", "--port", "0"], "--port must be between 1 and 65535, not 0."),
    (["serve", "--max-concurrent", "0"], "--max-concurrent must be at least 1, not 0."),
    (["serve", "--max-upload-mb", "0"], "--max-upload-mb must be in (0, 1024], not 0."),
    (["serve", "--max-pixels", "0"], "--max-pixels must be at least 1, not 0."),
    (["serve", "--max-memory-mb", "20"], "--max-memory-mb 20 leaves no room to segment"),
    (
        ["serve", "--max-memory-mb", "256", "--max-pixels", "25000000"],
        "--max-pixels 25000000 does not fit --max-memory-mb 256, which allows at most",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_options_are_one_error_line(tmp_path, model_file, monkeypatch, args, message):
    monkeypatch.setattr(server.uvicorn, "run", lambda *a, **k: pytest.fail("server started"))
    Image.new("RGB", (80, 60), (10, 200, 30)).save(tmp_path / "im.png")
    command, *options = args
    where = {
        "predict": [str(tmp_path / "im.png"), "--out", str(tmp_path / "o"), "--backend", "eager"],
        "export": ["--out", str(tmp_path / "m.onnx")],
        "serve": ["--backend", "eager"],
    }[command]
    result = runner.invoke(app, [command, str(model_file), *where, *options])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]


NOTE = "note: --path is deprecated; use --backend"


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_predict_path_is_a_deprecated_alias_of_backend(tmp_path, model_file):
    Image.new("RGB", (80, 60), (10, 200, 30)).save(tmp_path / "im.png")
    outputs = {}
    for option in ("--backend", "--path"):
        out = tmp_path / option.strip("-")
        args = ["predict", str(model_file), str(tmp_path / "im.png"), "--out", str(out)]
        result = runner.invoke(app, [*args, option, "eager"])
        assert result.exit_code == 0, result.output
        assert "1 of 1 images segmented" in result.stdout and "(eager)" in result.stdout
        outputs[option] = ((out / "im.png").read_bytes(), stderr_lines(result))
    assert outputs["--path"][0] == outputs["--backend"][0]  # the same masks
    assert outputs["--path"][1] == [NOTE] and NOTE not in outputs["--backend"][1]


def test_serve_path_is_a_deprecated_alias_of_backend(model_file, monkeypatch):
    calls = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append(app))
    result = runner.invoke(app, ["serve", str(model_file), "--path", "eager"])
    assert result.exit_code == 0, result.output
    assert stderr_lines(result)[0] == NOTE
    from fastapi.testclient import TestClient

    with TestClient(calls[0]) as client:
        assert client.get("/health").json()["backend"] == "eager"


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_path_and_backend_must_agree(tmp_path, model_file, monkeypatch, command):
    monkeypatch.setattr(server.uvicorn, "run", lambda *a, **k: pytest.fail("server started"))
    args = [command, str(model_file), *([str(tmp_path)] if command == "predict" else [])]
    result = runner.invoke(app, [*args, "--backend", "onnx", "--path", "eager"])
    assert result.exit_code == 2, result.output
    assert stderr_lines(result) == [
        NOTE,
        "error: --path eager and --backend onnx disagree; pass only --backend.",
    ]


def test_an_unknown_backend_names_the_choices(tmp_path, model_file):
    result = runner.invoke(app, ["predict", str(model_file), str(tmp_path), "--backend", "gpu"])
    assert result.exit_code == 2
    assert "unknown backend 'gpu'; choose one of: auto, best, rule, eager," in result.output
    assert "openvino-int8." in result.output
