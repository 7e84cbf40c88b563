"""Held-out sequences beside val in a run; eval scores any sequences, with flip TTA."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fcnlab.engine.evaluate import evaluate_checkpoint, flip_averaged
from fcnlab.engine.train import train
from tests.engine.test_train import tiny_config


def test_held_out_sequences_are_evaluated_and_reported_apart(tmp_path):
    # Synthetic names are train_00000..: the prefix train_0000 is a "sequence" of 8 frames.
    cfg = tiny_config(
        "data.options={length: 12, size: [32, 48]}",
        "data.holdout_sequences=[train_0000]",
        "train.precision=fp32",
    )
    run_dir = train(cfg, tmp_path / "run")
    final = json.loads((run_dir / "eval.json").read_text())
    held = final["holdout"]
    assert held["images"] == 10 and held["sequences"] == ["train_0000"]
    assert held["split"] == "train" and "bf" in held and "bf" in final  # BF at the end
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    validated = [r for r in rows if "val_miou" in r]
    assert [r["step"] for r in validated] == [3, 6]
    assert all("holdout_miou" in r for r in validated)
    assert validated[-1]["holdout_miou"] == pytest.approx(held["miou"], abs=1e-5)
    report = (run_dir / "report.md").read_text()
    assert "## Held-out sequences" in report and "The 10 images of sequence(s) train_0000" in report
    # The same images scored again from the checkpoint, as `fcnlab eval --sequences` does.
    again, path = evaluate_checkpoint(
        run_dir / "last.pt", split="train", sequences=["train_0000"], precision="fp32"
    )
    assert again["miou"] == pytest.approx(held["miou"], abs=1e-9)
    saved = json.loads(path.read_text())
    assert path.name == "last_eval_train_train_0000.json"
    assert saved["images"] == 10 and saved["sequences"] == ["train_0000"] and saved["tta"] is None
    flipped, path = evaluate_checkpoint(run_dir / "last.pt", flip=True, precision="fp32")
    assert path.name == "last_eval_val_flip.json" and json.loads(path.read_text())["tta"] == "flip"
    assert 0.0 <= flipped["miou"] <= 1.0


def test_flip_averaged_predictions_are_mirror_symmetric():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, kernel_size=(1, 3), padding=(0, 1))  # not mirror-symmetric itself
    x = torch.randn(2, 3, 5, 7)
    plain = model(x)
    assert not torch.allclose(model(x.flip(-1)).flip(-1), plain, atol=1e-3)
    averaged = flip_averaged(model, x)
    assert torch.allclose(flip_averaged(model, x.flip(-1)), averaged.flip(-1), atol=1e-6)
    assert torch.allclose(averaged.sum(1), torch.ones(2, 5, 7), atol=1e-6)  # probabilities
