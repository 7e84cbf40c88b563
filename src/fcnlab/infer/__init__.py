"""Inference: execution backends, TTA and tiling, the predictor and batch prediction of files."""

from fcnlab.infer.predictor import Prediction, Predictor
from fcnlab.infer.runtime import (
    BACKENDS,
    Backend,
    BackendChoice,
    check_backend,
    make_runner,
    resolve_backend,
)
from fcnlab.infer.tiling import TTA, parse_tta

__all__ = [
    "BACKENDS",
    "TTA",
    "Backend",
    "BackendChoice",
    "Prediction",
    "Predictor",
    "check_backend",
    "make_runner",
    "parse_tta",
    "resolve_backend",
]
