"""``--backend auto``: the execution backend measured fastest on this machine, for this model
and input size, among those that give the same masks as eager fp32.

On the first batch of an input-size bucket (height and width rounded up to multiples of
128, and the batch size), :class:`AutoRunner` times each candidate backend that needs no
extra input (eager, channels_last, bf16 where bf16 is native, ONNX Runtime fp32 and OpenVINO
when installed: :func:`fcnlab.infer.runtime.default_candidates`)
for about ``budget_s`` seconds in all, keeps the fastest whose masks agree with eager fp32 on
at least :data:`MIN_AGREEMENT` of the pixels of that very batch, and caches the choice in
``autotune.json`` in the cache folder (``$FCNLAB_CACHE_DIR``, else
``$XDG_CACHE_HOME/fcnlab``, else ``~/.cache/fcnlab``). The cache key holds the CPU model
and ISA, thread count, device, torch and ONNX Runtime versions, the model's arguments and
the bucket, so a change of any of them measures again. ``--backend rule`` (or
``FCNLAB_AUTOTUNE=0``) skips measuring and uses the capability rule of
:func:`fcnlab.infer.runtime.rule_backend`; ``FCNLAB_AUTOTUNE_SKIP=openvino,onnx`` keeps
backends out of the measurement. ``fcnlab bench --backend all`` is the full view.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fcnlab import hardware

Runner = Callable[[torch.Tensor], torch.Tensor]
#: Share of pixels whose class must equal eager fp32's for a backend to be eligible.
MIN_AGREEMENT = 0.995
BUCKET = 128


def cache_dir() -> Path:
    if os.environ.get("FCNLAB_CACHE_DIR"):
        return Path(os.environ["FCNLAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fcnlab"


def autotune_enabled() -> bool:
    return os.environ.get("FCNLAB_AUTOTUNE", "1").strip().lower() not in ("0", "false", "no")


def bucket_of(shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int]:
    """(batch, H, W) with H and W rounded up to multiples of :data:`BUCKET`."""
    n, _, h, w = shape
    return n, math.ceil(h / BUCKET) * BUCKET, math.ceil(w / BUCKET) * BUCKET


def machine_key(device: torch.device | str) -> dict[str, Any]:
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    return {
        "cpu": hardware.cpu_model(),
        # What torch may use, not only what the CPU has: an ISA cap changes every timing.
        "isa": hardware.isa_summary(hardware.usable_flags()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "torch": torch.__version__,
        "onnxruntime": ort,
    }


class AutotuneCache:
    """A JSON file of measured choices; unreadable or foreign content counts as empty."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "autotune.json"
        self._lock = threading.Lock()

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._read().get(key)
        return entry if isinstance(entry, dict) and isinstance(entry.get("backend"), str) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            data = {**self._read(), key: entry}
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".autotune.", dir=self.path.parent)
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1)
                os.replace(tmp, self.path)
            except OSError:
                pass  # a read-only cache only costs a measurement next time

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def time_runner(runner: Runner, x: torch.Tensor, budget_s: float) -> tuple[float, torch.Tensor]:
    """(median ms, output): one warm-up call, then calls until ``budget_s`` (2 to 10 calls).

    A runner with a ``prepare(shape)`` method is told the shape first, so that work it would
    do on a later call (OpenVINO's static compilation) is not timed as a call."""
    prepare = getattr(runner, "prepare", None)
    if prepare is not None:
        prepare(tuple(x.shape))
    out = runner(x)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 2 or (time.perf_counter() < deadline and len(times) < 10):
        start = time.perf_counter()
        runner(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), out


def agreement(got: torch.Tensor, want: torch.Tensor) -> float:
    if got.shape != want.shape:
        return 0.0
    return (got.argmax(1) == want.argmax(1)).float().mean().item()


class AutoRunner:
    """A runner that dispatches each batch to the backend measured fastest for its bucket.

    ``candidates`` maps backend names to factories building that backend's runner (``eager`` is
    the reference and must be there); ``model_key`` identifies the model in the cache;
    ``report(line)`` receives one line per choice (measured or read from the cache);
    ``min_agreement`` lowers the pixel agreement for backends judged by their measured val mIoU
    (an int8 companion).
    """

    def __init__(
        self,
        candidates: dict[str, Callable[[], Runner]],
        model_key: dict[str, Any],
        device: torch.device | str = "cpu",
        cache: AutotuneCache | None = None,
        budget_s: float = 2.0,
        report: Callable[[str], None] | None = None,
        min_agreement: dict[str, float] | None = None,
    ) -> None:
        if "eager" not in candidates:
            raise ValueError("the candidates must include the eager reference backend")
        self.candidates, self.model_key, self.device = candidates, model_key, torch.device(device)
        self.cache = cache or AutotuneCache()
        self.budget_s, self.report = budget_s, report or (lambda line: None)
        self.min_agreement = min_agreement or {}  # per backend; MIN_AGREEMENT otherwise
        self.chosen: dict[tuple[int, int, int], tuple[str, Runner]] = {}
        self._runners: dict[str, Runner] = {}
        self._lock = threading.Lock()

    @property
    def reference(self) -> Runner:
        """The eager fp32 runner (what memory estimates measure)."""
        return self._runner("eager")

    @property
    def chosen_backends(self) -> list[str]:
        """The backends chosen so far (one per input-size bucket, repeats removed), sorted."""
        return sorted({name for name, _ in self.chosen.values()})

    @property
    def backend(self) -> str:
        names = self.chosen_backends
        return f"auto ({', '.join(names)})" if names else "auto"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        bucket = bucket_of(x.shape)
        if bucket not in self.chosen:
            with self._lock:
                if bucket not in self.chosen:
                    self.chosen[bucket] = self._choose(bucket, x)
        return self.chosen[bucket][1](x)

    def _runner(self, name: str) -> Runner:
        if name not in self._runners:
            self._runners[name] = self.candidates[name]()
        return self._runners[name]

    def _choose(self, bucket: tuple[int, int, int], x: torch.Tensor) -> tuple[str, Runner]:
        key = AutotuneCache.key(
            {**machine_key(self.device), "model": self.model_key, "bucket": bucket}
        )
        cached = self.cache.get(key)
        if cached and cached["backend"] in self.candidates:
            name = cached["backend"]
            self.report(f"backend {name} (measured before, cached in {self.cache.path})")
            return name, self._runner(name)
        name, entry = self._measure(x)
        self.cache.put(key, {**entry, "bucket": list(bucket), "measured": time.time()})
        timings = ", ".join(f"{k} {v:.0f} ms" for k, v in entry["median_ms"].items())
        self.report(f"backend {name} (measured fastest agreeing backend: {timings})")
        keep = {name, *(chosen for chosen, _ in self.chosen.values())}
        for other in [n for n in self._runners if n not in keep]:
            del self._runners[other]  # memory: only chosen runners stay (others rebuild)
        return name, self._runner(name)

    def _measure(self, x: torch.Tensor) -> tuple[str, dict[str, Any]]:
        share = self.budget_s / len(self.candidates)
        timings: dict[str, float] = {}
        agreements: dict[str, float] = {}
        errors: dict[str, str] = {}
        timings["eager"], reference = time_runner(self._runner("eager"), x, share)
        agreements["eager"] = 1.0
        for name in [n for n in self.candidates if n != "eager"]:
            try:
                ms, out = time_runner(self._runner(name), x, share)
            except Exception as error:  # a backend this machine cannot run is not a candidate
                errors[name] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                self._runners.pop(name, None)
                continue
            timings[name], agreements[name] = ms, agreement(out, reference)
        eligible = [n for n in timings if agreements[n] >= self.min_agreement.get(n, MIN_AGREEMENT)]
        best = min(eligible, key=timings.__getitem__)
        entry = {
            "backend": best,
            "median_ms": timings,
            "agreement": agreements,
            "errors": errors,
        }
        return best, entry


def skipped_backends() -> set[str]:
    """Backends ``FCNLAB_AUTOTUNE_SKIP`` (comma-separated) keeps out of the measurement."""
    text = os.environ.get("FCNLAB_AUTOTUNE_SKIP", "")
    return {name.strip() for name in text.split(",") if name.strip()} - {"eager"}
