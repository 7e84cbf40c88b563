"""Datasets, paired transforms and dataset checks.

``build_dataset(name, root, split, transform, **options)`` is the one entry point the engine
and CLI use; ``name`` is one of :data:`DATASETS`. Every dataset returns
``(image, int64 HxW mask)`` pairs and carries ``info`` (a :class:`LabelSpace`). Options are
checked against the dataset constructor's annotations (:func:`fcnlab.data.options.check_options`).
"""

from __future__ import annotations

from fcnlab.data.build import DATASETS, build_dataset
from fcnlab.data.check import (
    DataReport,
    check_dataset,
    class_pixel_counts,
    format_report,
    median_frequency_weights,
)
from fcnlab.data.classes import CAMVID_INFO, VOC_INFO, LabelSpace
from fcnlab.data.datasets import (
    CamVidDataset,
    FolderDataset,
    SegmentationDataset,
    SyntheticShapes,
    VOCDataset,
)
from fcnlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms

__all__ = [
    "CAMVID_INFO",
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VOC_INFO",
    "CamVidDataset",
    "DataReport",
    "FolderDataset",
    "LabelSpace",
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
