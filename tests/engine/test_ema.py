"""The weight average (train.ema): its update rule, what best.pt holds, and exact resumes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fcnlab.engine.checkpoint import load_checkpoint
from fcnlab.engine.ema import WeightAverage
from fcnlab.engine.evaluate import evaluate_checkpoint
from fcnlab.engine.train import train
from fcnlab.errors import FcnlabError
from tests.engine.test_train import assert_same_tensors, tiny_config


def test_the_average_moves_by_the_warmed_up_rate_and_copies_counters():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(net, decay=0.99)
    start = {k: v.clone() for k, v in average.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(4.0)
        net[1].num_batches_tracked.fill_(7)
    rate = average.rate()
    assert rate == pytest.approx(1 / 10)  # (1 + 0) / (10 + 0): the start is soon forgotten
    average.update(net)
    state, trained = average.module.state_dict(), net.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean"):
        expected = rate * start[key] + (1 - rate) * trained[key]
        assert torch.allclose(state[key], expected), key
    assert state["1.num_batches_tracked"].item() == 7
    assert average.updates == 1
    assert not any(p.requires_grad for p in average.module.parameters())
    average.updates = 10_000
    assert average.rate() == 0.99  # later: the configured decay


def test_best_and_the_final_metrics_are_the_average(tmp_path):
    run_dir = train(tiny_config("train.ema=0.9", "train.precision=fp32"), tmp_path / "run")
    last, best = load_checkpoint(run_dir / "last.pt"), load_checkpoint(run_dir / "best.pt")
    trained = last["train_state"]["trained_state_dict"]
    assert last["train_state"]["ema_updates"] == 6
    differs = [k for k, v in trained.items() if v.is_floating_point()]
    assert any(not torch.equal(trained[k], last["state_dict"][k]) for k in differs)
    # The metrics saved with each checkpoint are those of the weights it holds.
    final = json.loads((run_dir / "eval.json").read_text())
    assert final["ema"] == 0.9
    for path, saved in ((run_dir / "last.pt", final), (run_dir / "best.pt", best["metrics"])):
        again, _ = evaluate_checkpoint(path, precision="fp32", json_path=tmp_path / "e.json")
        assert again["miou"] == pytest.approx(saved["miou"], abs=1e-9), path.name


def test_resume_restores_the_average_exactly(tmp_path):
    cfg = tiny_config("train.ema=0.8")
    full = train(cfg, tmp_path / "full")
    stopped = train(cfg, tmp_path / "resumed", stop_after=3)
    assert load_checkpoint(stopped / "last.pt")["train_state"]["ema_updates"] == 3
    train(cfg, tmp_path / "resumed", resume=True)
    a = load_checkpoint(full / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert_same_tensors(a["state_dict"], b["state_dict"])  # the average
    assert_same_tensors(
        a["train_state"]["trained_state_dict"], b["train_state"]["trained_state_dict"]
    )
    assert a["train_state"]["ema_updates"] == b["train_state"]["ema_updates"] == 6


def test_resuming_with_a_different_ema_setting_is_refused(tmp_path):
    train(tiny_config("train.ema=0.8"), tmp_path / "a", stop_after=2)
    with pytest.raises(FcnlabError, match="started with it; resume with the config"):
        train(tiny_config(), tmp_path / "a", resume=True)
    train(tiny_config(), tmp_path / "b", stop_after=2)
    with pytest.raises(FcnlabError, match="started without it; resume with the config"):
        train(tiny_config("train.ema=0.8"), tmp_path / "b", resume=True)
