"""kill -9 a real training process, at random moments and in the middle of a checkpoint write:
the checkpoint on disk always loads, ``--resume`` finishes the run, no temporary file is left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fcnlab.config import ExperimentConfig, apply_overrides, config_to_dict
from fcnlab.engine.checkpoint import load_checkpoint

TINY = [
    "model.width_mult=0.25",
    "data.options={length: 8, size: [32, 32]}",
    "data.crop_size=[32, 32]",
    "data.batch_size=2",
    "train.steps=60",
    "train.val_every=20",
    "train.log_every=5",
    "train.checkpoint_every=3",
    "train.report_samples=0",
    "train.int8_companion=false",  # tested in tests/export/test_companion.py
]
#: Run in the child: the CLI, with the second fsync (the second checkpoint write) hanging
#: after touching a marker file, so the test can kill the process inside a save.
HANG_IN_SECOND_SAVE = """
import os, sys, time, pathlib
marker, calls, real = pathlib.Path(sys.argv[1]), [], os.fsync
def fsync(fd):
    calls.append(fd)
    if len(calls) == 2:
        marker.touch()
        time.sleep(120)
    real(fd)
os.fsync = fsync
from fcnlab.cli import main
sys.argv = ["fcnlab", *sys.argv[2:]]
main()
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    cfg = apply_overrides(ExperimentConfig(), TINY)
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    return path


def start(args: list[str], log: Path, code: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "fcnlab"]
    command += [] if code else args
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.05)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def resume_to_the_end(config: Path, run_dir: Path, log: Path) -> None:
    process = start(["train", str(config), "--out", str(run_dir), "--resume"], log)
    assert process.wait(300) == 0, log.read_text()[-3000:]
    assert json.loads((run_dir / "eval.json").read_text())["miou"] >= 0
    assert load_checkpoint(run_dir / "last.pt")["train_state"]["step"] == 60
    assert not list(run_dir.glob(".*.pt.*")), "temporary checkpoint files were left behind"
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    train_steps = [s for s in steps if s % 5 == 0]
    assert train_steps == sorted(train_steps)  # no rows repeated after the resume


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_kill_at_a_random_moment_then_resume(tmp_path, seed):
    config, run_dir, log = write_config(tmp_path), tmp_path / "run", tmp_path / "log.txt"
    process = start(["train", str(config), "--out", str(run_dir)], log)
    wait_for(run_dir / "last.pt", process)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    kill(process)
    checkpoint = load_checkpoint(run_dir / "last.pt")  # whatever the moment, it loads
    step = checkpoint["train_state"]["step"]
    assert step % 3 == 0 or step % 20 == 0  # checkpoint_every=3; every validation saves too
    resume_to_the_end(config, run_dir, log)


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    config, run_dir, log = write_config(tmp_path), tmp_path / "run", tmp_path / "log.txt"
    marker = tmp_path / "saving"
    args = [str(marker), "train", str(config), "--out", str(run_dir)]
    process = start(args, log, HANG_IN_SECOND_SAVE)
    wait_for(marker, process)
    kill(process)
    assert list(run_dir.glob(".last.pt.*")), "the kill should interrupt a write in progress"
    assert load_checkpoint(run_dir / "last.pt")["train_state"]["step"] == 3  # the first save
    resume_to_the_end(config, run_dir, log)
