"""Models: backbones, heads, the segmenter and the registry."""

from fcnlab.models.registry import (
    ARCHITECTURES,
    create_model,
    input_normalization,
    is_model,
    list_models,
    parse_name,
)
from fcnlab.models.segmenter import Segmenter

__all__ = [
    "ARCHITECTURES",
    "Segmenter",
    "create_model",
    "input_normalization",
    "is_model",
    "list_models",
    "parse_name",
]
