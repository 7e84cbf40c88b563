"""Shared test settings: small, deterministic and offline."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from PIL import Image


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist (pyproject's ``-n 2``) each worker takes its share of the cores.

    Two workers with all the cores each would oversubscribe them (OpenMP threads spinning
    against each other); children started by tests inherit the share through OMP_NUM_THREADS.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        affinity = getattr(os, "sched_getaffinity", None)  # Linux; macOS and Windows lack it
        cores = len(affinity(0)) if affinity else os.cpu_count() or 1
        threads = max(1, cores // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


_share_the_cores_between_workers()
# torch.compile's tests would leave inductor's compile-worker pool (threads and processes) in
# the worker process, which later tests fork for DataLoader workers: a worker aborted once in
# such a fork (tests/engine/test_val_workers.py after the compile tests). Compile in-process.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch, tmp_path):
    torch.manual_seed(0)
    # Never reach for the network or the user's cache: torch.hub looks under TORCH_HOME.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    # --backend auto measures on first use: tests use the rule unless they test the measuring
    # (tests/infer/test_autotune.py), and never write into the user's cache.
    monkeypatch.setenv("FCNLAB_CACHE_DIR", str(tmp_path / "fcnlab_cache"))
    monkeypatch.setenv("FCNLAB_AUTOTUNE", "0")
    # OpenVINO is tested in tests/infer/test_openvino.py; loaded into the same process as
    # torch.compile's tests before them it crashed the suite once (see the closing note).
    monkeypatch.setenv("FCNLAB_AUTOTUNE_SKIP", "openvino,openvino-int8")
    # predict and serve set PIL's decompression-bomb limit process-wide (set_decode_limit),
    # bench --threads torch's thread count, and a worker runs many files in one process: no
    # test leaves them to the next.
    limit, threads = Image.MAX_IMAGE_PIXELS, torch.get_num_threads()
    with warnings.catch_warnings():
        yield
    Image.MAX_IMAGE_PIXELS = limit
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """One torch thread: light on a shared machine, immune to OpenMP oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A tiny DeepLabv3+ MobileNetV2 checkpoint (3 classes, width 0.25), made once."""
    from tests.checkpoints import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="session")
def predictor(model_file):
    from fcnlab.infer import Predictor

    return Predictor.load(model_file, backend="eager")
