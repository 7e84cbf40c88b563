"""What a deployed model needs besides its weights: classes, colours and preprocessing.

A :class:`ModelCard` is read from a checkpoint or from an exported ONNX file (where it is
stored as JSON in the model's ``metadata_props`` under the key ``fcnlab``), so predict and
serve treat both alike and no preprocessing constant is duplicated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fcnlab.errors import FcnlabError

METADATA_KEY = "fcnlab"


@dataclass(frozen=True)
class ModelCard:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: The resolution the model works at, relative to the images it is given.
    scale: float = 1.0
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelCard:
        try:
            data = json.loads(text)
            return cls(
                name=data["name"],
                classes=tuple(data["classes"]),
                palette=tuple(tuple(c) for c in data["palette"]),
                ignore_index=int(data["ignore_index"]),
                mean=tuple(data["mean"]),
                std=tuple(data["std"]),
                scale=float(data.get("scale", 1.0)),
                model_args=dict(data.get("model_args", {})),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise FcnlabError(f"{source} has a damaged fcnlab description ({error}).") from None

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> ModelCard:
        norm = checkpoint["normalization"]
        return cls(
            name=checkpoint["model"].get("name", "model"),
            classes=tuple(checkpoint["classes"]),
            palette=tuple(tuple(c) for c in checkpoint["palette"]),
            ignore_index=int(checkpoint["ignore_index"]),
            mean=tuple(norm["mean"]),
            std=tuple(norm["std"]),
            scale=float(checkpoint.get("scale", 1.0)),
            model_args=dict(checkpoint["model"]),
        )
