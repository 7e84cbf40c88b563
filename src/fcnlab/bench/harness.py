"""The speed harness: every model on every execution backend, timed and checked the same way.

:func:`bench_models` takes fcnlab model names or :class:`Candidate` objects (any
``nn.Module`` factory: peers from other libraries are wrapped the same way, so they run "as
fcnlab": same input, same runners, same timing) and returns one flat dict per
(model, backend). For each model:

1. the model is built with random weights (``torch.manual_seed(0)`` first) in eval mode;
2. its eager fp32 output on the bench input is the reference;
3. for each backend, :func:`fcnlab.infer.runtime.make_runner` prepares a runner (BN folding,
   channels_last, bf16 autocast, torch.compile, ONNX export, int8 quantisation calibrated on
   a few random normalised images); its first call is checked against the reference (pixel
   agreement of the arg-max, max |logit diff|); then ``warmup`` more untimed calls and
   ``repeats`` timed ones (:func:`fcnlab.bench.timing.time_call`).

Rows (see :data:`ROW_KEYS`): ``median_ms`` and spread in ms, ``images_per_s``, ``gflops`` per
image (FlopCounterMode, counted on the meta device when the model allows it), achieved
GFLOP/s and its fraction of the fp32 and bf16 GEMM ceilings, ``agreement`` in [0, 1],
``max_abs_diff``, ``prepare_s`` (runner preparation and first call), ``chosen`` (the backend
``auto`` measured fastest and ran; None for the others) and ``error``. A model or
backend that fails (no compiler for torch.compile, a size a peer refuses, ...) gives rows whose
``error`` holds the reason and whose numbers are None; it never stops the other rows.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from fcnlab.bench.ceilings import Ceilings, measure_ceilings
from fcnlab.bench.timing import check_counts, time_call
from fcnlab.data import IMAGENET_MEAN, IMAGENET_STD
from fcnlab.errors import FcnlabError
from fcnlab.infer.runtime import (
    BACKENDS,
    BackendChoice,
    check_backend,
    make_runner,
    resolve_backend,
)
from fcnlab.models.registry import create_model, parse_name
from fcnlab.models.summary import count_flops

#: Every key of a result row, in table order.
ROW_KEYS = (
    "model", "source", "backend", "size", "batch", "median_ms", "p25_ms", "p75_ms", "min_ms",
    "max_ms", "images_per_s", "repeats", "gflops", "achieved_gflops", "frac_fp32_ceiling",
    "frac_bf16_ceiling", "agreement", "max_abs_diff", "rel_diff", "prepare_s", "chosen", "error",
)  # fmt: skip
#: Random normalised images the onnx-int8 backend is calibrated on.
CALIBRATION_IMAGES = 4
#: What ``fcnlab bench --backend`` accepts: what predict accepts, and ``all`` (every backend).
BenchBackend = Literal["all", BackendChoice]


@dataclass(frozen=True)
class Candidate:
    """A model to time: ``build(num_classes)`` returns it (random weights; any nn.Module
    whose output is logits ``N x C x H x W`` or a dict with them under ``"out"``)."""

    name: str
    build: Callable[[int], nn.Module] = field(repr=False)
    source: str = "fcnlab"


def fcnlab_candidate(name: str, **kwargs: Any) -> Candidate:
    """An fcnlab model by name (``create_model`` keyword arguments pass through)."""
    parse_name(name)  # an unknown name fails here, before anything is measured

    def build(num_classes: int) -> nn.Module:
        return create_model(name, num_classes, **kwargs)

    return Candidate(name, build, "fcnlab")


def expand_backends(backends: Sequence[str], device: torch.device | str = "cpu") -> list[str]:
    """Backend names in order, without repeats: ``all`` is every backend, ``best`` (or
    ``auto``) the one fcnlab uses by default on ``device``; an unknown name (not a
    :data:`BenchBackend`) raises FcnlabError."""
    if not backends:
        raise FcnlabError("no backend given; pass --backend with a backend name, best or all.")
    out: list[str] = []
    for backend in backends:
        check_backend(backend, BenchBackend)
        if backend == "all":
            names = list(BACKENDS)
        else:
            names = [resolve_backend("auto" if backend == "best" else backend, device)]
        out += [name for name in names if name not in out]
    return out


def check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise FcnlabError(f"size must be two positive integers (height, width), not {size!r}.")
    return int(size[0]), int(size[1])


def normalised_images(batch: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Uniform random RGB images normalised with the ImageNet statistics, fixed by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, *size, generator=generator)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (images - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def tensor_output(out: Any) -> torch.Tensor:
    return out["out"] if isinstance(out, dict) else out


def model_gflops(candidate: Candidate, model: nn.Module, size: tuple[int, int], classes: int):
    """GFLOPs of one image: on the meta device if the model builds there, else for real."""
    try:
        with torch.device("meta"):
            meta = candidate.build(classes).eval()
        return count_flops(meta, size) / 1e9
    except Exception:  # some third-party models do data-dependent work while building
        with torch.no_grad():
            return count_flops(model, size) / 1e9


def bench_models(
    models: Sequence[str | Candidate],
    size: Sequence[int] = (512, 512),
    batch: int = 1,
    backends: Sequence[str] = ("best",),
    repeats: int = 10,
    warmup: int = 2,
    num_classes: int = 21,
    ceilings: Ceilings | None = None,
    device: str = "cpu",
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (model, backend), models in the given order; see the module docstring.

    ``ceilings`` defaults to :func:`measure_ceilings` on ``device`` (a few seconds);
    ``on_row`` is called with each row as soon as it is measured (progress output).
    Arguments a user can get wrong raise FcnlabError before anything runs.
    """
    size = check_size(size)
    check_counts(repeats, warmup)
    if batch < 1:
        raise FcnlabError(f"batch must be at least 1, not {batch}.")
    if num_classes < 1:
        raise FcnlabError(f"the number of classes must be at least 1, not {num_classes}.")
    names = expand_backends(backends, device)
    candidates = [m if isinstance(m, Candidate) else fcnlab_candidate(m) for m in models]
    ceilings = ceilings or measure_ceilings(device=device)
    x = normalised_images(batch, size, seed=0)
    calibration = list(normalised_images(CALIBRATION_IMAGES, size, seed=1).split(1))
    rows = []
    for candidate in candidates:
        settings = _Settings(x, calibration, ceilings, repeats, warmup, num_classes, device)
        for row in bench_candidate(candidate, names, settings):
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


@dataclass(frozen=True)
class _Settings:
    x: torch.Tensor
    calibration: list[torch.Tensor]
    ceilings: Ceilings
    repeats: int
    warmup: int
    num_classes: int
    device: str


def bench_candidate(candidate: Candidate, backends: list[str], s: _Settings) -> Iterator[dict]:
    """Rows of one model on ``backends`` (already expanded, see :func:`expand_backends`), each
    yielded as soon as it is measured."""
    size = tuple(s.x.shape[-2:])
    base = {"model": candidate.name, "source": candidate.source, "size": "x".join(map(str, size))}
    base["batch"] = len(s.x)
    try:
        torch.manual_seed(0)
        model = candidate.build(s.num_classes).eval().to(s.device)
        gflops = model_gflops(candidate, model, size, s.num_classes)
        reference = make_runner(model, "eager", s.device)
        want = tensor_output(reference(s.x)).float().cpu()
    except Exception as error:
        for backend in backends:
            yield _row(base, backend, error=f"model failed: {_reason(error)}")
        return
    with tempfile.TemporaryDirectory(prefix="fcnlab-bench-") as tmp:
        for backend in backends:
            try:
                measured = _measure(model, backend, want, s, Path(tmp) / backend, gflops)
                row = _row(base, backend, **measured)
            except Exception as error:
                row = _row(base, backend, gflops=gflops, error=_reason(error))
            gc.collect()
            yield row


def _measure(
    model: nn.Module,
    backend: str,
    want: torch.Tensor,
    s: _Settings,
    workdir: Path,
    gflops: float,
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runner = make_runner(model, backend, s.device, s.calibration, workdir)
    got = tensor_output(runner(s.x)).float().cpu()
    prepare_s = time.perf_counter() - start
    if got.shape != want.shape:
        raise FcnlabError(f"output shape {tuple(got.shape)} differs from eager {want.shape}.")
    timing = time_call(runner, s.x, repeats=s.repeats, warmup=s.warmup, batch=len(s.x))
    diff = (got - want).abs().max().item()
    achieved = gflops * len(s.x) / (timing.median_ms / 1e3)
    return {
        **timing.summary(),
        "gflops": gflops,
        "achieved_gflops": achieved,
        "frac_fp32_ceiling": achieved / s.ceilings.fp32_gflops,
        "frac_bf16_ceiling": achieved / s.ceilings.bf16_gflops if s.ceilings.bf16_gflops else None,
        "agreement": (got.argmax(1) == want.argmax(1)).float().mean().item(),
        "max_abs_diff": diff,
        "rel_diff": diff / max(want.abs().max().item(), 1e-12),
        "prepare_s": prepare_s,
        # What auto ran: the backend it measured fastest (one input size here, one choice).
        "chosen": ", ".join(getattr(runner, "chosen_backends", [])) or None,
    }


def _row(base: dict[str, Any], backend: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(ROW_KEYS)
    row.update(base, backend=backend, **values)
    return row


def _reason(error: BaseException) -> str:
    """The first line of an exception, prefixed by its type: short enough for a table."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300]


def table_cells(row: dict[str, Any]) -> list[str]:
    """A row as text for :data:`TABLE_HEADER` (failed rows show their error instead)."""
    if row["error"]:
        return [row["model"], row["backend"], f"failed: {row['error']}", *[""] * 8]
    backend = row["backend"] + (f" ({row['chosen']})" if row.get("chosen") else "")
    return [
        row["model"],
        backend,
        f"{row['median_ms']:.1f}",
        f"{row['p25_ms']:.1f}-{row['p75_ms']:.1f}",
        f"{row['images_per_s']:.2f}",
        f"{row['gflops']:.2f}",
        f"{row['achieved_gflops']:.0f}",
        f"{100 * row['frac_fp32_ceiling']:.0f}",
        _percent(row["frac_bf16_ceiling"]),
        f"{100 * row['agreement']:.2f}",
        f"{row['max_abs_diff']:.1e}",
    ]


TABLE_HEADER = [
    "model", "backend", "median ms", "p25-p75 ms", "images/s", "GFLOPs", "GFLOP/s",
    "% fp32 ceiling", "% bf16 ceiling", "agreement %", "max abs diff",
]  # fmt: skip


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.0f}"
