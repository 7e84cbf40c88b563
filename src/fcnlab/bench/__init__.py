"""Speed measurements: machine ceilings, latency timing and the model-by-backend harness.

``fcnlab bench`` (:mod:`fcnlab.cli.bench`) is the command line; the scripts under ``bench/``
use :func:`bench_models` for the side-by-side comparisons and :func:`results_json` for their
JSON.
"""

from fcnlab.bench.ceilings import Ceilings, measure_ceilings
from fcnlab.bench.harness import ROW_KEYS, Candidate, bench_models, fcnlab_candidate
from fcnlab.bench.report import machine_info, results_json
from fcnlab.bench.timing import Timing, time_call

__all__ = [
    "ROW_KEYS",
    "Candidate",
    "Ceilings",
    "Timing",
    "bench_models",
    "fcnlab_candidate",
    "machine_info",
    "measure_ceilings",
    "results_json",
    "time_call",
]
