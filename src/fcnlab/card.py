"""What a deployed model needs besides its weights: its label space, name and working scale.

A :class:`ModelCard` is read from a checkpoint or from an exported ONNX file (where it is
stored as JSON in the model's ``metadata_props`` under the key ``fcnlab``), so predict and
serve treat both alike. Its label space (classes, palette, ignore label, normalisation) is a
:class:`~fcnlab.labels.LabelSpace` written and read in the one form a checkpoint uses too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fcnlab.errors import FcnlabError
from fcnlab.labels import Color, LabelSpace
from fcnlab.serialization import expect_dict, expect_entry, expect_number, shown

METADATA_KEY = "fcnlab"


@dataclass(frozen=True)
class ModelCard:
    name: str
    labels: LabelSpace
    #: The resolution the model works at, relative to the images it is given.
    scale: float = 1.0
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.labels.classes

    @property
    def palette(self) -> tuple[Color, ...]:
        return self.labels.palette

    @property
    def ignore_index(self) -> int:
        return self.labels.ignore_index

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.labels.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.labels.std

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    def to_json(self) -> str:
        fields = {"name": self.name, **self.labels.to_fields(), "scale": self.scale}
        return json.dumps({**fields, "model_args": self.model_args})

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
        fields = {**checkpoint, "name": model.get("name", "model"), "model_args": model}
        return cls.from_fields(fields, source)

    @classmethod
    def from_fields(cls, data: Any, source: str) -> ModelCard:
        """A card from a mapping of its fields, each checked; ``source`` names it in errors."""
        name = expect_entry(data, "name", source)
        if not isinstance(name, str):
            raise FcnlabError(
                f"{source} has model name {shown(name)}, not a string; it is damaged."
            )
        return cls(
            name=name,
            labels=LabelSpace.from_fields(data, source),
            scale=expect_number(data.get("scale", 1.0), "scale", source, positive=True),
            model_args=dict(expect_dict(data.get("model_args", {}), "model_args", source)),
        )
