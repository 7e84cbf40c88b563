"""The training guards: no non-finite checkpoint ever, no loop that cannot end, clean errors,
and a run folder that stays consistent across resumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fcnlab.cli import app
from fcnlab.engine.checkpoint import load_checkpoint
from fcnlab.engine.guards import FiniteGuard, count_nonfinite, steps_per_epoch
from fcnlab.engine.losses import SegmentationLoss
from fcnlab.engine.runstate import remove_stale_temporaries
from fcnlab.engine.train import train
from fcnlab.errors import FcnlabError
from tests.engine.test_train import tiny_config


def finite_weights(path) -> bool:
    state = load_checkpoint(path)["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values() if torch.is_floating_point(t))


def read_log(run_dir) -> list[dict]:
    # json.loads accepts the bare NaN token; parse_constant makes it an error, as strict
    # JSON readers (jq, JavaScript) do.
    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line, parse_constant=refuse) for line in lines]


def test_finite_guard_remembers_the_first_bad_step():
    guard = FiniteGuard(torch.device("cpu"))
    guard.observe(torch.tensor(1.0), 1)
    assert guard.first_bad_step() is None
    guard.observe(torch.tensor(math.inf), 3)
    guard.observe(torch.tensor(math.nan), 4)
    guard.observe(torch.tensor(2.0), 5)
    assert guard.first_bad_step() == 3


def test_count_nonfinite_counts_weights_and_buffers():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    assert count_nonfinite(net) == 0
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = math.nan
        net[1].running_var[1] = math.inf
    assert count_nonfinite(net) == 2


def test_a_diverging_run_never_writes_a_non_finite_checkpoint(tmp_path):
    cfg = tiny_config(
        "train.lr=1e6", "train.steps=30", "train.log_every=10", "train.checkpoint_every=5",
        "train.val_every=5",
    )  # fmt: skip
    with pytest.raises(FcnlabError, match="NaN or infinite") as error:
        train(cfg, tmp_path / "run")
    assert "\n" not in str(error.value)
    run_dir = tmp_path / "run"
    for name in ("last.pt", "best.pt"):
        if (run_dir / name).exists():
            assert finite_weights(run_dir / name), name
    if (run_dir / "metrics.jsonl").exists():
        read_log(run_dir)  # strict JSON
    assert not list(run_dir.glob(".*.pt.*"))


class NanAfter(SegmentationLoss):
    """The real loss until ``calls`` calls, then NaN (a run that diverges mid-way)."""

    calls = 0
    limit = 14  # batch 2 x accumulation 1: step 7 is the first bad one

    def __call__(self, out, target):
        NanAfter.calls += 1
        loss = super().__call__(out, target)
        return loss * math.nan if NanAfter.calls > NanAfter.limit else loss


@pytest.fixture
def nan_after_step_7(monkeypatch):
    NanAfter.calls = 0
    NanAfter.limit = 7
    monkeypatch.setattr("fcnlab.engine.setup.SegmentationLoss", NanAfter)


def test_the_error_names_the_last_good_checkpoint_which_stays_good(tmp_path, nan_after_step_7):
    cfg = tiny_config(
        "train.steps=20", "train.log_every=100", "train.checkpoint_every=5",
        "train.val_every=100",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    with pytest.raises(FcnlabError) as error:
        train(cfg, run_dir)
    message = str(error.value)
    assert "at step 8" in message and "stopped without saving" in message
    assert f"{run_dir / 'last.pt'} (step 5) is the last good checkpoint" in message
    checkpoint = load_checkpoint(run_dir / "last.pt")
    assert checkpoint["train_state"]["step"] == 5
    assert finite_weights(run_dir / "last.pt")


def test_a_non_finite_validation_loss_stops_the_run(tmp_path, monkeypatch):
    import fcnlab.engine.train as loop

    real = loop.evaluate

    def nan_loss(*args, **kwargs):
        return {**real(*args, **kwargs), "loss": math.nan}

    monkeypatch.setattr(loop, "evaluate", nan_loss)
    run_dir = tmp_path / "run"
    with pytest.raises(FcnlabError, match="validation loss became nan at step 3"):
        train(tiny_config("train.steps=6", "train.val_every=3"), run_dir)
    assert not (run_dir / "best.pt").exists() and not (run_dir / "last.pt").exists()


@pytest.mark.parametrize(
    ("samples", "batch", "processes", "message"),
    [(4, 8, 1, "4 samples"), (6, 4, 2, "3 per process"), (0, 1, 1, "0 samples")],
)
def test_no_possible_optimizer_step_is_refused_up_front(samples, batch, processes, message):
    with pytest.raises(FcnlabError, match=message):
        steps_per_epoch(samples, batch, processes, 1)
    assert steps_per_epoch(16, 4, 1, 8) == 1  # accumulation across epochs is progress


def test_a_train_split_smaller_than_a_batch_ends_at_once(tmp_path):
    cfg = tiny_config("data.options={length: 3, size: [32, 48]}", "data.batch_size=4")
    with pytest.raises(FcnlabError, match="fewer than one batch"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_stale_temporary_checkpoints_are_removed_on_start_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in (".last.pt.abc123", ".best.pt.x", "keep.txt"):
        (run_dir / name).write_bytes(b"")
    assert sorted(p.name for p in remove_stale_temporaries(run_dir)) == [
        ".best.pt.x",
        ".last.pt.abc123",
    ]
    train(tiny_config("train.steps=4", "train.val_every=2"), run_dir, stop_after=2)
    (run_dir / ".last.pt.killed").write_bytes(b"")
    train(tiny_config("train.steps=4", "train.val_every=2"), run_dir, resume=True)
    assert sorted(p.name for p in run_dir.glob(".*")) == []
    assert (run_dir / "keep.txt").exists()


def test_resume_truncates_the_log_to_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    cfg = tiny_config("train.steps=8", "train.val_every=4", "train.log_every=2")
    train(cfg, run_dir, stop_after=4)
    with (run_dir / "metrics.jsonl").open("a") as log:  # rows a killed run wrote after it
        log.write(json.dumps({"step": 6, "train_loss": 9.0}) + "\n")
        log.write('{"step": 7, "train_lo')  # cut short by the kill
    train(cfg, run_dir, resume=True)
    steps = [r["step"] for r in read_log(run_dir) if "train_loss" in r]
    assert steps == [2, 4, 6, 8]
    assert all(r.get("train_loss") != 9.0 for r in read_log(run_dir))


def test_a_worker_error_is_the_original_one_line_sentence(tmp_path):
    root = tmp_path / "mine"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((32, 48, 3), 90 * (i % 3), np.uint8)).save(
                root / "images" / split / f"{i}.png"
            )
            labels = np.full((32, 48), 9 if (split, i) == ("train", 2) else 1, np.uint8)
            Image.fromarray(labels).save(root / "masks" / split / f"{i}.png")
    (root / "classes.yaml").write_text("names: [background, thing]\n")
    args = ["train", "--out", str(tmp_path / "run")]
    for item in (
        "data.name=folder", f"data.root={root}", "data.workers=1", "data.batch_size=2",
        "data.crop_size=[32, 48]", "train.steps=4", "train.report_samples=0",
        "model.width_mult=0.25",
    ):  # fmt: skip
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "label values 9 outside 0..1" in error[0], result.output
    assert "Traceback" not in result.output and "DataLoader" not in result.output
