"""The class tables of the built-in benchmarks, as label spaces (:mod:`fcnlab.labels`).

``VOC_INFO`` and ``CAMVID_INFO`` describe Pascal VOC and CamVid (11 classes).
"""

from __future__ import annotations

from fcnlab.labels import Color, LabelSpace


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

VOC_INFO = LabelSpace(
    name="voc",
    classes=VOC_CLASSES,
    palette=voc_colormap(len(VOC_CLASSES)),
    ignore_index=255,
)

# Names and colours from the SegNet CamVid README; 11 (void, black) is ignored.
CAMVID_INFO = LabelSpace(
    name="camvid",
    classes=(
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
        "Pedestrian", "Bicyclist",
    ),
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
    ignore_index=11,
)  # fmt: skip
