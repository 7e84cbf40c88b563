"""The label space: what a model's outputs mean and what its inputs must look like.

:class:`LabelSpace` is the one description of classes, their display colours, the ignore label
and the input normalisation. Datasets carry one (``dataset.info``), training writes it into
every checkpoint, export writes it into the ONNX file's card, and predict, evaluate and serve
read it back: :meth:`LabelSpace.to_fields` and :meth:`LabelSpace.from_fields` are its only
plain-data form, checked entry by entry, so no constant is written twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fcnlab.errors import FcnlabError
from fcnlab.serialization import (
    expect_dict,
    expect_entry,
    expect_int,
    expect_palette,
    expect_str_list,
    expect_triple,
    shown,
)

Color = tuple[int, int, int]
#: torchvision's ImageNet statistics, which its pretrained backbones expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class LabelSpace:
    """Class names, one colour per class, the ignore label and the input normalisation."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[Color, ...]
    ignore_index: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not self.classes:
            raise FcnlabError(f"dataset '{self.name}' has no class names; give at least one.")
        if len(self.palette) != len(self.classes):
            raise FcnlabError(
                f"dataset '{self.name}' has {len(self.classes)} class names but "
                f"{len(self.palette)} palette colours; give one colour per class."
            )
        if 0 <= self.ignore_index < len(self.classes):
            raise FcnlabError(
                f"dataset '{self.name}' uses ignore_index {self.ignore_index}, which is a class "
                f"index; pick a value outside 0..{len(self.classes) - 1} (255 is usual)."
            )
        if any(s <= 0 for s in self.std):
            raise FcnlabError(f"dataset '{self.name}' has a normalization std {self.std} <= 0.")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalized_by(self, mean: Any, std: Any) -> LabelSpace:
        """The same classes with another input normalisation."""
        return dataclasses.replace(self, mean=_triple(mean), std=_triple(std))

    def to_fields(self) -> dict[str, Any]:
        """The plain-data form: a checkpoint's entries, the card's JSON."""
        return {
            "dataset": self.name,
            "classes": list(self.classes),
            "palette": [list(color) for color in self.palette],
            "ignore_index": self.ignore_index,
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
        }

    @classmethod
    def from_fields(cls, data: Any, source: str) -> LabelSpace:
        """Read :meth:`to_fields`' form, each entry checked; ``source`` names it in errors.

        Cards written before the label space had one form keep ``mean``/``std`` at the top
        level; they are read too.
        """
        classes = expect_str_list(expect_entry(data, "classes", source), "classes", source)
        palette = expect_palette(
            expect_entry(data, "palette", source), "palette", source, len(classes)
        )
        ignore = expect_int(expect_entry(data, "ignore_index", source), "ignore_index", source)
        if "normalization" in data or "mean" not in data:
            norm = expect_dict(expect_entry(data, "normalization", source), "normalization", source)
            where = f"{source}'s normalization"
        else:
            norm, where = data, source
        mean = expect_triple(expect_entry(norm, "mean", where), "normalization mean", source)
        std = expect_triple(
            expect_entry(norm, "std", where), "normalization std", source, positive=True
        )
        name = data.get("dataset", "model")
        if not isinstance(name, str):
            raise FcnlabError(f"{source} has dataset {shown(name)}, not a name; it is damaged.")
        try:
            return cls(name, tuple(classes), tuple(palette), ignore, mean, std)
        except FcnlabError as err:
            raise FcnlabError(f"{source} has an inconsistent label space: {err}") from None


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)
