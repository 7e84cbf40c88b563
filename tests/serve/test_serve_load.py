"""A smoke test of bench/serve_load.py's pieces (the load test itself runs for minutes)."""

from __future__ import annotations

import importlib.util
import sys
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"
PIL_DEFAULT_LIMIT = 1024 * 1024 * 1024 // 4 // 3  # PIL.Image.MAX_IMAGE_PIXELS as PIL ships it


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_load"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["serve_load"]


def test_payloads_are_what_their_names_say(load, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PIL_DEFAULT_LIMIT)  # the limit users meet
    data = load.payloads(max_pixels=400_000)
    large = Image.open(BytesIO(data["large"]))
    assert 0.7 * 400_000 < large.width * large.height <= 0.8 * 400_000
    with pytest.raises(Image.DecompressionBombError, match="900000000 pixels"):
        Image.open(BytesIO(data["bomb"]))
    pixels = Image.open(BytesIO(data["pixels"]))
    pixels.load()  # a valid PNG, not only a header
    assert pixels.size == (6000, 4000)
    assert len(data["oversize"]) > 10 * 2**20 and len(data["bomb"]) < 2**20
    assert abs(sum(load.MIX.values()) - 1) < 1e-9


def test_summary_row_counts_statuses_and_percentiles(load):
    records = [load.Record("normal", 200, t / 10) for t in range(1, 11)]
    records += [load.Record("bomb", 413, 0.01), load.Record("oversize", 0, 0.02)]
    records.append(load.Record("abandoned", -1, 1.0))
    row = load.summarise(50, 2.0, records, 1234.4)
    assert row[:4] == ["50", "13", "6.5", "5.00"]
    assert row[5] == "0.60 / 1.00"  # p50 / p99 of the ten 200s
    assert row[6] == "1234"
    assert row[7] == "200: 10, 413: 1, abandoned: 1, closed (oversize): 1"
    assert len(row) == len(load.HEADER)
