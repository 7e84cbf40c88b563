"""Datasets, paired transforms and dataset checks.

``build_dataset(name, root, split, transform, **options)`` is the one entry point the engine
and CLI use; ``name`` is one of :data:`DATASETS`. Every dataset returns
``(image, int64 HxW mask)`` pairs and carries ``info`` (a :class:`DatasetInfo`). Options are
checked against the dataset constructor's annotations (:func:`fcnlab.data.options.check_options`).
"""

from __future__ import annotations

from pathlib import Path

from fcnlab.data.check import (
    DataReport,
    check_dataset,
    class_pixel_counts,
    format_report,
    median_frequency_weights,
)
from fcnlab.data.classes import CAMVID_INFO, VOC_INFO, DatasetInfo
from fcnlab.data.datasets import (
    CamVidDataset,
    FolderDataset,
    SegmentationDataset,
    SyntheticShapes,
    VOCDataset,
)
from fcnlab.data.datasets.base import Transform
from fcnlab.data.options import check_options
from fcnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from fcnlab.errors import FcnlabError

DATASETS: dict[str, type[SegmentationDataset]] = {
    "voc": VOCDataset,
    "camvid": CamVidDataset,
    "folder": FolderDataset,
    "synthetic": SyntheticShapes,
}


def build_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    transform: Transform | None = None,
    **options: object,
) -> SegmentationDataset:
    """Create dataset ``name`` for ``split`` under ``root`` (``None`` only for synthetic)."""
    if name not in DATASETS:
        raise FcnlabError(f"unknown dataset '{name}'; valid names are {', '.join(DATASETS)}.")
    cls = DATASETS[name]
    options = check_options(name, cls, options)
    if cls is not SyntheticShapes:
        if root is None:
            raise FcnlabError(f"dataset '{name}' needs a root folder; pass its path as root.")
        if not Path(root).is_dir() and not options.get("download"):
            raise FcnlabError(
                f"root folder {root} for dataset '{name}' does not exist; check the path."
            )
    return cls(root, split, transform, **options)


__all__ = [
    "CAMVID_INFO",
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VOC_INFO",
    "CamVidDataset",
    "DataReport",
    "DatasetInfo",
    "FolderDataset",
    "SegmentationDataset",
    "SyntheticShapes",
    "VOCDataset",
    "build_dataset",
    "check_dataset",
    "class_pixel_counts",
    "eval_transforms",
    "format_report",
    "median_frequency_weights",
    "train_transforms",
]
