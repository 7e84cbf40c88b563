"""Latency of one call: warm-up runs, then timed repeats, summarised by the median.

Contract: :func:`time_call` runs ``fn(*args)`` ``warmup`` times untimed (allocator, oneDNN
primitive caches, compiled graphs), then ``repeats`` times timed with ``time.perf_counter``
(after a CUDA synchronise when ``device`` is a GPU). The median is the headline number, the
spread is given both as the inter-quartile range (p25-p75) and as min-max.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fcnlab.errors import FcnlabError


@dataclass(frozen=True)
class Timing:
    """Timed repeats of one call on a batch of ``batch`` images, in milliseconds."""

    times_ms: tuple[float, ...]
    batch: int = 1

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)

    @property
    def p25_ms(self) -> float:
        return _quantile(self.times_ms, 0.25)

    @property
    def p75_ms(self) -> float:
        return _quantile(self.times_ms, 0.75)

    @property
    def images_per_s(self) -> float:
        """``batch * 1000 / median_ms``."""
        return self.batch * 1000.0 / self.median_ms

    def summary(self) -> dict[str, float]:
        return {
            "median_ms": self.median_ms,
            "p25_ms": self.p25_ms,
            "p75_ms": self.p75_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "images_per_s": self.images_per_s,
            "repeats": len(self.times_ms),
        }


def _quantile(values: tuple[float, ...], q: float) -> float:
    """Linear-interpolation quantile (numpy's default); the value itself for one sample."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def check_counts(repeats: int, warmup: int) -> None:
    if repeats < 1:
        raise FcnlabError(f"repeats must be at least 1, not {repeats}.")
    if warmup < 0:
        raise FcnlabError(f"warmup must be 0 or more, not {warmup}.")


def time_call(
    fn: Callable[..., object],
    *args: object,
    repeats: int = 10,
    warmup: int = 2,
    batch: int = 1,
    device: torch.device | str = "cpu",
) -> Timing:
    """Run ``fn(*args)`` ``warmup`` times, then time ``repeats`` runs (see module docstring)."""
    check_counts(repeats, warmup)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn(*args)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return Timing(tuple(times), batch)
