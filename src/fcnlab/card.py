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
from fcnlab.serialization import (
    expect_dict,
    expect_entry,
    expect_int,
    expect_number,
    expect_palette,
    expect_str_list,
    expect_triple,
    shown,
)

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
        except (ValueError, TypeError) as error:
            raise FcnlabError(f"{source} has a damaged fcnlab description ({error}).") from None
        return cls.from_fields(data, f"{source}'s fcnlab description")

    @classmethod
    def from_checkpoint(
        cls, checkpoint: dict[str, Any], source: str = "the checkpoint"
    ) -> ModelCard:
        model = expect_dict(expect_entry(checkpoint, "model", source), "model", source)
        norm = expect_entry(checkpoint, "normalization", source)
        fields = {
            "name": model.get("name", "model"),
            "classes": expect_entry(checkpoint, "classes", source),
            "palette": expect_entry(checkpoint, "palette", source),
            "ignore_index": expect_entry(checkpoint, "ignore_index", source),
            "mean": expect_entry(norm, "mean", source),
            "std": expect_entry(norm, "std", source),
            "scale": checkpoint.get("scale", 1.0),
            "model_args": model,
        }
        return cls.from_fields(fields, source)

    @classmethod
    def from_fields(cls, data: Any, source: str) -> ModelCard:
        """A card from a mapping of its fields, each checked; ``source`` names it in errors."""
        name = expect_entry(data, "name", source)
        if not isinstance(name, str):
            raise FcnlabError(
                f"{source} has model name {shown(name)}, not a string; it is damaged."
            )
        classes = expect_str_list(expect_entry(data, "classes", source), "classes", source)
        palette = expect_entry(data, "palette", source)
        return cls(
            name=name,
            classes=tuple(classes),
            palette=tuple(expect_palette(palette, "palette", source, len(classes))),
            ignore_index=expect_int(
                expect_entry(data, "ignore_index", source), "ignore_index", source
            ),
            mean=expect_triple(expect_entry(data, "mean", source), "mean", source),
            std=expect_triple(expect_entry(data, "std", source), "std", source, positive=True),
            scale=expect_number(data.get("scale", 1.0), "scale", source, positive=True),
            model_args=dict(expect_dict(data.get("model_args", {}), "model_args", source)),
        )
