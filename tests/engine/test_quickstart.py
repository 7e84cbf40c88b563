"""The main job as the README runs it: the quickstart reaches >= 0.8 val mIoU."""

from __future__ import annotations

import json

import pytest

from fcnlab.config import ExperimentConfig
from fcnlab.engine.train import train


@pytest.mark.slow
def test_quickstart_reaches_its_promised_miou(tmp_path):
    run_dir = train(ExperimentConfig(), tmp_path / "quickstart")
    metrics = json.loads((run_dir / "eval.json").read_text())
    assert metrics["miou"] >= 0.8, metrics["miou"]
    assert (run_dir / "report.html").is_file() and (run_dir / "best.pt").is_file()
