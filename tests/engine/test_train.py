"""Training end to end on synthetic data: it learns, resumes exactly, and never loses work."""

from __future__ import annotations

import json

import pytest
import torch

from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from fcnlab.engine.train import train
from fcnlab.errors import FcnlabError


def tiny_config(*overrides: str) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        [
            "model.name=deeplabv3plus_mobilenet_v2",
            "data.options={length: 8, size: [32, 48]}",
            "data.crop_size=[32, 48]",
            "data.batch_size=2",
            "data.workers=0",
            "train.steps=6",
            "train.val_every=3",
            "train.log_every=2",
            "train.report_samples=0",
            "train.deterministic=true",
            *overrides,
        ],
    )


def test_overfits_a_small_synthetic_set(tmp_path):
    # Train and evaluate on the same 8 images, no augmentation: it must fit them.
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "model.name=fcn8s_resnet18",
            "data.options={length: 8, size: [48, 64]}",
            "data.val_split=train",
            "data.crop_size=[48, 64]",
            "data.scale_range=[1.0, 1.0]",
            "data.hflip=false",
            "data.batch_size=4",
            "data.workers=0",
            "train.optimizer=adamw",
            "train.lr=0.003",
            "train.steps=120",
            "train.val_every=1000",
            "train.report_samples=1",
        ],
    )
    run_dir = train(cfg, tmp_path / "run")
    metrics = json.loads((run_dir / "eval.json").read_text())
    assert metrics["miou"] >= 0.9, metrics["miou"]
    for name in ("last.pt", "best.pt", "config.yaml", "metrics.jsonl", "report.html"):
        assert (run_dir / name).is_file(), name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < losses[0] / 3


def test_resume_ends_with_the_same_weights(tmp_path):
    cfg = tiny_config()
    full = train(cfg, tmp_path / "full")
    stopped = train(cfg, tmp_path / "resumed", stop_after=3)
    assert load_checkpoint(stopped / "last.pt")["train_state"]["step"] == 3
    train(cfg, tmp_path / "resumed", resume=True)
    a = load_checkpoint(full / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    assert_same_tensors(a["state_dict"], b["state_dict"])


def assert_same_tensors(a: dict, b: dict) -> None:
    """Two state dicts hold the same keys and bit-identical tensors."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_checkpoint_describes_itself(tmp_path):
    run_dir = train(tiny_config("train.steps=2", "data.scale=0.5"), tmp_path / "run")
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint["model"]["name"] == "deeplabv3plus_mobilenet_v2"
    assert checkpoint["classes"][0] == "background" and len(checkpoint["palette"]) == 4
    assert checkpoint["scale"] == 0.5
    assert set(checkpoint["normalization"]) == {"mean", "std"}
    assert checkpoint["config"]["train"]["steps"] == 2
    assert "torch" in checkpoint["versions"]
    model = model_from_checkpoint(checkpoint).eval()
    assert model(torch.randn(1, 3, 21, 17)).shape == (1, 4, 21, 17)


def test_refuses_to_overwrite_a_run_and_resume_needs_one(tmp_path):
    cfg = tiny_config("train.steps=1")
    train(cfg, tmp_path / "run")
    with pytest.raises(FcnlabError, match="already holds a run; continue it with --resume"):
        train(cfg, tmp_path / "run")
    with pytest.raises(FcnlabError, match=r"cannot resume: .* does not exist"):
        train(cfg, tmp_path / "other", resume=True)


def test_gradient_accumulation_and_class_weights(tmp_path):
    cfg = tiny_config(
        "train.steps=2",
        "train.grad_accum=2",
        "train.class_weights=[1, 2, 2, 2]",
        "train.precision=bf16",
        "model.aux=true",
    )
    run_dir = train(cfg, tmp_path / "run")
    state = load_checkpoint(run_dir / "last.pt")["train_state"]
    assert state["step"] == 2 and state["batch_in_epoch"] == 4  # 2 steps x 2 batches
    with pytest.raises(FcnlabError, match="lists 2 weights for 4 classes"):
        train(tiny_config("train.class_weights=[1, 2]"), tmp_path / "bad")


def test_fp16_on_cpu_is_refused(tmp_path):
    with pytest.raises(FcnlabError, match="fp16 needs a CUDA GPU"):
        train(tiny_config("train.precision=fp16", "train.device=cpu"), tmp_path / "run")
