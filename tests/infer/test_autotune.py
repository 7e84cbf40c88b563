"""``--backend auto`` measured: the cached choice is reused, invalidated by torch, CPU or
model changes, a backend that disagrees with eager is never chosen, one that fails is skipped.

Timings are injected (``time_runner`` replaced), so no test depends on this machine's speed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fcnlab import hardware
from fcnlab.infer import autotune
from fcnlab.infer.autotune import AutoRunner, AutotuneCache, bucket_of
from fcnlab.infer.runtime import default_candidates
from tests.checkpoints import tiny_model

SPEED_MS = {"eager": 30.0, "channels_last": 20.0, "bf16": 10.0, "wrong": 1.0}


def good(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[:, 0], -x[:, 0]], 1)  # two classes, decided by the first channel


def wrong(x: torch.Tensor) -> torch.Tensor:
    return -good(x)


class Factories:
    """Candidate factories that count how often each runner is built."""

    def __init__(self, names=("eager", "channels_last", "bf16")) -> None:
        self.built: list[str] = []
        self.names = names

    def candidates(self, **extra):
        table = {name: good for name in self.names} | extra
        return {name: self._factory(name, fn) for name, fn in table.items()}

    def _factory(self, name, fn):
        def build():
            self.built.append(name)
            return _Named(fn, name)

        return build


class _Named:
    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, x):
        return self.fn(x)


@pytest.fixture
def fixed_timings(monkeypatch):
    def fake(runner, x, budget_s):
        return SPEED_MS[runner.name], runner(x)

    monkeypatch.setattr(autotune, "time_runner", fake)


@pytest.fixture
def cache(tmp_path):
    return AutotuneCache(tmp_path / "autotune.json")


X = torch.randn(1, 3, 100, 150)


def test_buckets_round_up_to_multiples_of_128():
    assert bucket_of((1, 3, 100, 150)) == (1, 128, 256)
    assert bucket_of((2, 3, 128, 129)) == (2, 128, 256)


def test_the_fastest_agreeing_backend_is_chosen_and_cached(fixed_timings, cache):
    factories, lines = Factories(), []
    runner = AutoRunner(factories.candidates(), {"name": "m"}, cache=cache, report=lines.append)
    assert torch.equal(runner(X), good(X))
    assert runner.backend == "auto (bf16)"
    assert "backend bf16 (measured" in lines[0] and "eager 30 ms" in lines[0]
    entry = next(iter(json.loads(cache.path.read_text()).values()))
    assert entry["backend"] == "bf16" and entry["agreement"]["bf16"] == 1.0
    assert set(runner._runners) == {"bf16"}  # the others are dropped: memory stays bounded
    runner(X)  # the same bucket: no second measurement
    assert sorted(factories.built) == ["bf16", "channels_last", "eager"]

    again, lines = Factories(), []
    second = AutoRunner(again.candidates(), {"name": "m"}, cache=cache, report=lines.append)
    second(X)
    assert again.built == ["bf16"] and "cached" in lines[0]  # reused: only its runner built


@pytest.mark.parametrize(
    "change",
    [
        lambda mp: mp.setattr(torch, "__version__", "9.9.9"),
        lambda mp: mp.setattr(hardware, "cpu_model", lambda: "Another CPU"),
        lambda mp: mp.setattr(torch, "get_num_threads", lambda: 97),
    ],
    ids=["torch-version", "cpu", "threads"],
)
def test_a_new_machine_or_torch_measures_again(fixed_timings, cache, monkeypatch, change):
    AutoRunner(Factories().candidates(), {"name": "m"}, cache=cache)(X)
    change(monkeypatch)
    factories = Factories()
    AutoRunner(factories.candidates(), {"name": "m"}, cache=cache)(X)
    assert sorted(factories.built) == ["bf16", "channels_last", "eager"]


def test_another_model_or_size_measures_again(fixed_timings, cache):
    AutoRunner(Factories().candidates(), {"name": "m"}, cache=cache)(X)
    for key, x in [({"name": "other"}, X), ({"name": "m"}, torch.randn(1, 3, 300, 150))]:
        factories = Factories()
        AutoRunner(factories.candidates(), key, cache=cache)(x)
        assert len(factories.built) == 3


def test_a_disagreeing_backend_is_never_chosen(fixed_timings, cache):
    runner = AutoRunner(Factories().candidates(wrong=wrong), {"name": "m"}, cache=cache)
    assert torch.equal(runner(X), good(X))
    entry = next(iter(json.loads(cache.path.read_text()).values()))
    assert entry["median_ms"]["wrong"] == 1.0 and entry["agreement"]["wrong"] == 0.0
    assert entry["backend"] == "bf16"


def test_a_failing_backend_is_skipped(fixed_timings, cache):
    def broken(x):
        raise RuntimeError("no such kernel")

    runner = AutoRunner(
        Factories(("eager", "channels_last")).candidates(bf16=broken), {}, cache=cache
    )
    runner(X)
    entry = next(iter(json.loads(cache.path.read_text()).values()))
    assert entry["backend"] == "channels_last" and "no such kernel" in entry["errors"]["bf16"]


def test_a_corrupt_cache_is_measured_over(fixed_timings, cache):
    cache.path.write_text("{not json")
    factories = Factories()
    AutoRunner(factories.candidates(), {}, cache=cache)(X)
    assert len(factories.built) == 3 and json.loads(cache.path.read_text())


def test_real_candidates_give_eager_masks(cache, one_thread):
    model = tiny_model()
    candidates = default_candidates(model, "cpu")
    assert {"eager", "channels_last"} <= set(candidates)
    assert ("bf16" in candidates) == hardware.bf16_is_native("cpu")
    runner = AutoRunner(candidates, {"name": "tiny"}, cache=cache, budget_s=0.5)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        want = model(x)
    got = runner(x)
    assert (got.argmax(1) == want.argmax(1)).float().mean() >= autotune.MIN_AGREEMENT


def test_predict_backend_auto_measures_and_reports_once_per_size(model_file, monkeypatch, tmp_path):
    from fcnlab.infer import Predictor
    from fcnlab.infer.runtime import resolve_backend

    monkeypatch.setenv("FCNLAB_AUTOTUNE", "1")
    assert resolve_backend("auto") == "auto" and resolve_backend("best") == "auto"
    lines: list[str] = []
    predictor = Predictor.load(model_file, report=lines.append)
    image = Image.fromarray(np.full((70, 90, 3), 120, np.uint8))
    eager = Predictor.load(model_file, backend="eager").predict(image).mask
    assert (predictor.predict(image).mask == eager).mean() >= autotune.MIN_AGREEMENT
    predictor.predict(image)
    assert len(lines) == 1 and lines[0].startswith("backend ")
    assert predictor.backend.startswith("auto (")
    assert (tmp_path / "fcnlab_cache" / "autotune.json").is_file()


def test_rule_and_disabled_autotune_use_the_capability_rule(monkeypatch):
    from fcnlab.infer.runtime import resolve_backend, rule_backend

    assert rule_backend() == ("bf16" if hardware.bf16_is_native("cpu") else "channels_last")
    assert resolve_backend("rule") == rule_backend()
    monkeypatch.setenv("FCNLAB_AUTOTUNE", "0")
    assert resolve_backend("auto") == rule_backend()


def test_skipped_backends_stay_out_of_the_measurement(monkeypatch):
    monkeypatch.setenv("FCNLAB_AUTOTUNE_SKIP", "channels_last, eager ,onnx")
    candidates = default_candidates(tiny_model(), "cpu")
    assert "channels_last" not in candidates and "onnx" not in candidates
    assert "eager" in candidates  # the reference is never skipped
    monkeypatch.setenv("FCNLAB_AUTOTUNE_SKIP", "")
    assert "channels_last" in default_candidates(tiny_model(), "cpu")
