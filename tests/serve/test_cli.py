"""``fcnlab serve`` on the command line: the model is loaded before anything listens."""

from fastapi.testclient import TestClient
from typer.testing import CliRunner

import fcnlab.serve.server as server
from fcnlab.cli import app

runner = CliRunner()


def test_serve_loads_the_model_then_runs_uvicorn(monkeypatch, model_file):
    calls = {}
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    args = ["serve", str(model_file), "--port", "8123", "--backend", "eager"]
    result = runner.invoke(app, [*args, "--max-upload-mb", "1"])
    assert result.exit_code == 0, result.output
    assert calls["port"] == 8123 and calls["host"] == "127.0.0.1"
    with TestClient(calls["app"]) as client:
        assert client.get("/health").json()["max_bytes"] == 2**20


def test_serve_a_missing_model_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
