"""Time-budgeted training: the LR follows the budget fraction, the run stops inside it,
the final validation and report are written, and a resume keeps the budget."""

from __future__ import annotations

import json

import pytest

from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.engine.budget import Budget
from fcnlab.engine.checkpoint import load_checkpoint
from fcnlab.engine.optim import poly_lr
from fcnlab.engine.train import train
from fcnlab.errors import FcnlabError
from tests.engine.test_train import tiny_config


def test_budget_fraction_and_reserve():
    budget = Budget.from_config("100s")
    assert budget.fraction(25) == 0.25 and budget.fraction(150) == 1.0
    assert not budget.exhausted(98.0) and budget.exhausted(99.0)  # 1 s margin
    budget.reserve_s = 10.0  # the last validation took 10 s: the final one needs 12 (+1)
    assert not budget.exhausted(86.9) and budget.exhausted(87.1)
    assert Budget.from_config(None).fraction(5) is None
    assert not Budget.from_config(None).exhausted(1e9)


def test_poly_lr_follows_the_budget_fraction_instead_of_steps():
    cfg = apply_overrides(ExperimentConfig(), ["train.lr=1.0", "train.poly_power=1.0"]).train
    assert poly_lr(10, cfg, fraction=0.25) == pytest.approx(0.75)
    assert poly_lr(10, cfg, fraction=1.5) == 0.0
    cfg.warmup_steps = 4
    assert poly_lr(1, cfg, fraction=0.9) == pytest.approx(0.5)  # warm-up counts steps


# Long enough that a loaded or slow (AVX2) CPU still fits several steps and the final
# validation in it; the margin below is 30% of it, not a fixed number of seconds.
BUDGET_S = 10.0
BUDGETED = (
    "train.steps=100000",
    f"train.time_budget={BUDGET_S:.0f}s",
    "train.val_every=5",
    "train.log_every=1",
)


def test_a_budgeted_run_stops_at_its_budget_with_complete_outputs(tmp_path):
    run_dir = train(tiny_config(*BUDGETED, "train.report_samples=1"), tmp_path / "run")
    result = json.loads((run_dir / "eval.json").read_text())
    assert 0 < result["steps"] < 100000
    assert result["time_budget_s"] == BUDGET_S
    assert result["elapsed_s"] <= 1.3 * BUDGET_S  # the final validation ends (about) inside it
    for name in ("best.pt", "last.pt", "report.html", "metrics.jsonl"):
        assert (run_dir / name).is_file(), name
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    lrs = [r["lr"] for r in records if "lr" in r]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.5 * lrs[0]
    assert load_checkpoint(run_dir / "last.pt")["train_state"]["step"] == result["steps"]


def test_resume_keeps_the_budget(tmp_path):
    cfg = tiny_config(*BUDGETED)
    run_dir = tmp_path / "run"
    train(cfg, run_dir, stop_after=2)
    first = load_checkpoint(run_dir / "last.pt")["train_state"]
    train(cfg, run_dir, resume=True)
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["steps"] > first["step"]
    assert result["elapsed_s"] <= 1.3 * BUDGET_S  # the time before the interruption counts
    with pytest.raises(FcnlabError, match="already used its time budget"):
        train(cfg, run_dir, resume=True)
