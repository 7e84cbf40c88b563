"""Distributed training under torchrun: gloo, 2 CPU processes, synthetic data, a few steps.

Every job is launched the way users launch it (``python -m torch.distributed.run
--nproc-per-node 2 ...``) and bounded by a timeout, so a hang fails a test instead of
blocking the suite. What only the tests need (each rank's final weights, stopping early, a
rank that fails) lives in wrapper scripts written into ``tmp_path``; production code carries
no test hooks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fcnlab.data.datasets.synthetic import SyntheticShapes
from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from fcnlab.engine.distributed import Context
from fcnlab.engine.evaluate import evaluation_loader
from fcnlab.engine.losses import SegmentationLoss
from fcnlab.models import create_model

TIMEOUT_S = 300  # per launch; a healthy one takes well under a minute
IMAGES = 9  # odd: 2 ranks get 5 + 4 validation images, and the training sampler drops one
SIZE = (32, 40)
STEPS = 4
TRAIN_ARGS = [
    "--set",
    "model.name=deeplabv3plus_mobilenet_v2",  # BatchNorm and Dropout
    "--set",
    f"data.options={{length: {IMAGES}, size: [{SIZE[0]}, {SIZE[1]}]}}",
    "--set",
    f"data.crop_size=[{SIZE[0]}, {SIZE[1]}]",
    "--set",
    "data.batch_size=2",  # per process: 4 samples per rank -> 2 batches per epoch
    "--set",
    f"train.steps={STEPS}",
    "--set",
    "train.val_every=2",
    "--set",
    "train.log_every=1",
    "--set",
    "train.report_samples=0",
    "--set",
    "train.device=cpu",
    "--set",
    "train.int8_companion=false",  # tested in tests/export/test_companion.py
]

# fcnlab's CLI plus test-only controls, read from the environment by each rank.
TRAIN_WRAPPER = '''
"""fcnlab's CLI under torchrun, with test-only controls read from the environment:

FCNLAB_TEST_DUMP=DIR      each rank saves its final weights to DIR/rank<R>.pt
FCNLAB_TEST_STOP_AFTER=K  train(..., stop_after=K): stop, resumably, after K steps
FCNLAB_TEST_FAIL_RANK=R   rank R raises in its second training batch
"""
import functools
import os
import sys
from pathlib import Path

import torch

import fcnlab.engine.train as engine
from fcnlab.cli import main

RANK = int(os.environ["RANK"])
runs = []


class FailingLoss:
    def __init__(self, loss_fn):
        self.loss_fn, self.calls = loss_fn, 0

    def __call__(self, out, target):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError(f"injected failure on rank {RANK}")
        return self.loss_fn(out, target)

    def __getattr__(self, name):
        return getattr(self.loss_fn, name)


def capturing_prepare(*args, **kwargs):
    run = original_prepare(*args, **kwargs)
    if os.environ.get("FCNLAB_TEST_FAIL_RANK") == str(RANK):
        run.loss_fn = FailingLoss(run.loss_fn)
    runs.append(run)
    return run


original_prepare, engine.prepare = engine.prepare, capturing_prepare
if "FCNLAB_TEST_STOP_AFTER" in os.environ:
    stop_after = int(os.environ["FCNLAB_TEST_STOP_AFTER"])
    engine.train = functools.partial(engine.train, stop_after=stop_after)
try:
    main()
    code = 0
except SystemExit as exit_:
    code = exit_.code or 0
if code == 0 and "FCNLAB_TEST_DUMP" in os.environ:
    dump = Path(os.environ["FCNLAB_TEST_DUMP"]) / f"rank{RANK}.pt"
    torch.save(runs[-1].net.state_dict(), dump)
sys.exit(code)
'''

# One DDP backward through the production wrapping (setup.prepare) on fixed tensors, each rank
# its half of the batch, BatchNorm in eval mode: CPU DDP has no SyncBatchNorm (CUDA-only).
GRADIENT_SCRIPT = """
import sys
from pathlib import Path

import torch

from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.engine import distributed
from fcnlab.engine.setup import prepare

out, overrides = Path(sys.argv[1]), sys.argv[2:]
ctx = distributed.setup("cpu")
try:
    run = prepare(apply_overrides(ExperimentConfig(), overrides), ctx, out / "run")
    initial = {k: v.clone() for k, v in run.net.state_dict().items()}
    images, masks = torch.load(out / "batch.pt")
    half = len(images) // ctx.world_size
    mine = slice(ctx.rank * half, (ctx.rank + 1) * half)
    run.model.eval()
    loss = run.loss_fn(run.model(images[mine]), masks[mine])
    loss.backward()
    grads = {n: p.grad.clone() for n, p in run.net.named_parameters()}
    torch.save({"initial": initial, "grads": grads}, out / f"rank{ctx.rank}.pt")
finally:
    distributed.teardown()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    args: list[str], tmp: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 ARGS`` with one thread per process, output captured."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(free_port()), *args]
    return python(command, tmp, {**clean, **(env or {})})


def python(command: list[str], tmp: Path, env: dict[str, str] | None = None):
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    env |= {"XDG_CACHE_HOME": str(tmp / "cache"), "TORCH_HOME": str(tmp / "torch_home")}
    return subprocess.run(
        command, cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def succeeded(result: subprocess.CompletedProcess) -> bool:
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-8000:], sep="\n")
    return result.returncode == 0


def train_2_processes(tmp: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``fcnlab train TRAIN_ARGS --out OUT`` on 2 processes, through the test wrapper."""
    script = tmp / "train_wrapper.py"
    script.write_text(TRAIN_WRAPPER)
    return torchrun([str(script), "train", *TRAIN_ARGS, "--out", str(out)], tmp, env)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One complete 2-process training run; each rank dumped its final weights."""
    tmp = tmp_path_factory.mktemp("ddp")
    result = train_2_processes(tmp, tmp / "run", env={"FCNLAB_TEST_DUMP": str(tmp)})
    assert succeeded(result)
    return tmp, result


def test_two_processes_train_to_identical_weights(ddp_run):
    tmp, _ = ddp_run
    rank0 = torch.load(tmp / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key
    # BatchNorm statistics moved at every step (rank 0's, broadcast by DDP on each forward).
    assert any(k.endswith("num_batches_tracked") and v.item() == STEPS for k, v in rank0.items())

    checkpoint = load_checkpoint(tmp / "run" / "last.pt")
    model = model_from_checkpoint(checkpoint).eval()  # plain BatchNorm, no process group
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(value, rank0[key]), key
    assert model(torch.randn(1, 3, 21, 17)).shape == (1, 4, 21, 17)
    state = checkpoint["train_state"]
    # 8 of 9 images split over 2 ranks in batches of 2: 2 batches per epoch on each rank.
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (STEPS, 1, 2)


def test_rank_0_alone_logs_and_reports(ddp_run):
    tmp, result = ddp_run
    # The console wraps long lines where it likes (a longer machine line moves the breaks).
    output = " ".join((result.stdout + result.stderr).split())
    assert output.count("batch 2 x 2 processes x 1 accumulation = 4 images per step") == 1
    assert "BatchNorm per process (SyncBatchNorm needs CUDA)" in output
    assert output.count(f"step {STEPS}/{STEPS} val:") == 1
    records = [
        json.loads(line) for line in (tmp / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if "train_loss" in r] == list(range(1, STEPS + 1))
    assert [r["step"] for r in records if "val_miou" in r] == [2, 4]
    assert (tmp / "run" / "eval.json").is_file() and (tmp / "run" / "report.html").is_file()


def test_distributed_evaluation_matches_one_process(ddp_run, tmp_path):
    tmp, _ = ddp_run
    checkpoint = tmp / "run" / "last.pt"
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    eval_args = ["-m", "fcnlab", "eval", str(checkpoint), "--json"]
    assert succeeded(python([sys.executable, *eval_args, str(one)], tmp_path))
    assert succeeded(torchrun([*eval_args, str(two)], tmp_path))
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    # Every validation pixel counted exactly once: 5 + 4 images, none padded or repeated.
    assert sum(map(sum, b["confusion"])) == IMAGES * SIZE[0] * SIZE[1]
    assert a["confusion"] == b["confusion"]
    for key in ("pixel_acc", "mean_acc", "miou", "fwiou", "per_class"):
        assert a[key] == b[key], key
    # The training run's own (distributed) validation of these weights agrees too.
    assert json.loads((tmp / "run" / "eval.json").read_text())["confusion"] == a["confusion"]


@pytest.mark.parametrize(("length", "world_size"), [(1, 2), (5, 2), (9, 2), (7, 3)])
def test_evaluation_shards_cover_each_image_once(length, world_size):
    dataset = SyntheticShapes(split="val", size=(16, 16), length=length)
    shards = [
        list(evaluation_loader(dataset, Context(rank, world_size), 1, 0).dataset.indices)
        for rank in range(world_size)
    ]
    assert sorted(i for shard in shards for i in shard) == list(range(length))


def test_two_processes_give_the_gradient_of_one_double_batch(tmp_path):
    # fcn8s_resnet18 has no Dropout; with BatchNorm in eval mode nothing couples the samples
    # of a batch, so 2 processes x batch 2 must give the gradient of 1 process x batch 4.
    overrides = [
        "model.name=fcn8s_resnet18",
        f"data.options={{length: 4, size: [{SIZE[0]}, {SIZE[1]}]}}",
        "train.device=cpu",
    ]
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, *SIZE, generator=generator)
    masks = torch.randint(0, 4, (4, *SIZE), generator=generator)
    torch.save((images, masks), tmp_path / "batch.pt")
    script = tmp_path / "gradients.py"
    script.write_text(GRADIENT_SCRIPT)
    assert succeeded(torchrun([str(script), str(tmp_path), *overrides], tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    def gradients(batch: slice) -> dict[str, torch.Tensor]:
        model = create_model("fcn8s_resnet18", 4)
        model.load_state_dict(rank0["initial"])
        loss_fn = SegmentationLoss(255, None, aux_weight=0.4)
        loss_fn(model.eval()(images[batch]), masks[batch]).backward()
        return {name: p.grad for name, p in model.named_parameters()}

    whole, half = gradients(slice(0, 4)), gradients(slice(0, 2))
    assert rank0["grads"].keys() == whole.keys()
    for name, grad in whole.items():
        assert torch.equal(rank0["grads"][name], rank1["grads"][name]), name
        atol = 1e-5 * grad.abs().max().item()
        torch.testing.assert_close(rank0["grads"][name], grad, rtol=1e-4, atol=atol)
    # The comparison can fail: one process with only its own half gets another gradient.
    ddp, one = rank0["grads"]["head.score_fr.weight"], whole["head.score_fr.weight"]
    assert (half["head.score_fr.weight"] - one).norm() > 0.1 * one.norm()
    assert (ddp - one).norm() < 1e-5 * one.norm()


def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    start = time.perf_counter()
    result = train_2_processes(tmp_path, tmp_path / "run", env={"FCNLAB_TEST_FAIL_RANK": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "RuntimeError: injected failure on rank 1" in output
    # torchrun's summary names rank 1 as the root cause; rank 0 was stopped, not left hanging.
    assert re.search(r"Root Cause.*?rank\s*:\s*1 ", output, re.DOTALL), output[-3000:]
    assert not (tmp_path / "run" / "eval.json").exists()
    # Over in seconds: nothing waited for the process group's 600 s collective timeout.
    assert time.perf_counter() - start < 120


def test_resume_under_ddp_ends_where_an_uninterrupted_run_does(ddp_run, tmp_path):
    out = tmp_path / "run"
    stopped = train_2_processes(tmp_path, out, env={"FCNLAB_TEST_STOP_AFTER": "2"})
    assert succeeded(stopped)
    saved = load_checkpoint(out / "last.pt")["train_state"]
    assert saved["step"] == 2
    assert len(saved["rng_per_rank"]) == 2  # rank 1's dropout RNG resumes too
    assert not (out / "eval.json").exists()
    # Resume through the real CLI: it reads the run's own config.yaml.
    resumed = torchrun(["-m", "fcnlab", "train", "--resume", "--out", str(out)], tmp_path)
    assert succeeded(resumed)
    a = load_checkpoint(ddp_run[0] / "run" / "last.pt")
    b = load_checkpoint(out / "last.pt")
    assert a["train_state"]["step"] == b["train_state"]["step"] == STEPS
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_loss" in r] == list(range(1, STEPS + 1))
    assert model_from_checkpoint(b).eval()(torch.randn(1, 3, *SIZE)).shape == (1, 4, *SIZE)
