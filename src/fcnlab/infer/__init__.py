"""Inference: execution paths, TTA and tiling, the predictor and batch prediction of files."""

from fcnlab.infer.card import ModelCard
from fcnlab.infer.predictor import Prediction, Predictor
from fcnlab.infer.runtime import CHOICES, PATHS, make_runner, resolve_path
from fcnlab.infer.tiling import TTA, parse_tta

__all__ = [
    "CHOICES",
    "PATHS",
    "TTA",
    "ModelCard",
    "Prediction",
    "Predictor",
    "make_runner",
    "parse_tta",
    "resolve_path",
]
