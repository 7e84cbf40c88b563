"""Class tables: names, colours and the ignore label of a dataset.

:class:`DatasetInfo` is the one description of a label space that datasets, metrics,
prediction (palette PNGs) and checkpoints share. It is plain data: :meth:`DatasetInfo.as_dict`
and :meth:`DatasetInfo.from_dict` round-trip it through a checkpoint or a JSON file.
``VOC_INFO`` and ``CAMVID_INFO`` describe the two built-in benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fcnlab.errors import FcnlabError

Color = tuple[int, int, int]


@dataclass(frozen=True)
class DatasetInfo:
    """Names, display colours and ignore label of a segmentation label space."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[Color, ...]
    ignore_index: int

    def __post_init__(self) -> None:
        if not self.class_names:
            raise FcnlabError(f"dataset '{self.name}' has no class names; give at least one.")
        if len(self.palette) != len(self.class_names):
            raise FcnlabError(
                f"dataset '{self.name}' has {len(self.class_names)} class names but "
                f"{len(self.palette)} palette colours; give one colour per class."
            )
        if 0 <= self.ignore_index < len(self.class_names):
            raise FcnlabError(
                f"dataset '{self.name}' uses ignore_index {self.ignore_index}, which is a class "
                f"index; pick a value outside 0..{len(self.class_names) - 1} (255 is usual)."
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints and JSON."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "palette": [list(color) for color in self.palette],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        return cls(
            name=str(data["name"]),
            class_names=tuple(str(n) for n in data["class_names"]),
            palette=tuple((int(r), int(g), int(b)) for r, g, b in data["palette"]),
            ignore_index=int(data["ignore_index"]),
        )


def voc_colormap(n: int = 256) -> tuple[Color, ...]:
    """The Pascal VOC colour map: the bits of the class index spread over R, G and B."""
    colors = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

VOC_INFO = DatasetInfo(
    name="voc",
    class_names=VOC_CLASSES,
    palette=voc_colormap(len(VOC_CLASSES)),
    ignore_index=255,
)

# Names and colours from the SegNet CamVid README; 11 (void, black) is ignored.
CAMVID_INFO = DatasetInfo(
    name="camvid",
    class_names=(
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
        "Pedestrian", "Bicyclist",
    ),
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    ignore_index=11,
)  # fmt: skip
