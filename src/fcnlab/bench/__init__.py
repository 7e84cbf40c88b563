"""Speed measurements: machine ceilings, latency timing and the model-by-path harness.

``fcnlab bench`` (:func:`fcnlab.bench.command.bench_command`) is the command line; the
scripts under ``bench/`` use :func:`bench_models` for the side-by-side comparisons.
"""

from fcnlab.bench.ceilings import Ceilings, measure_ceilings
from fcnlab.bench.harness import ROW_KEYS, Candidate, bench_models, fcnlab_candidate
from fcnlab.bench.timing import Timing, time_call

__all__ = [
    "ROW_KEYS",
    "Candidate",
    "Ceilings",
    "Timing",
    "bench_models",
    "fcnlab_candidate",
    "measure_ceilings",
    "time_call",
]
