"""The dataset classes, one module each; :func:`fcnlab.data.build_dataset` picks by name."""

from fcnlab.data.datasets.base import FileDataset, Sample, SegmentationDataset
from fcnlab.data.datasets.camvid import CamVidDataset
from fcnlab.data.datasets.folder import FolderDataset
from fcnlab.data.datasets.synthetic import SyntheticShapes, synthetic_info
from fcnlab.data.datasets.voc import VOCDataset

__all__ = [
    "CamVidDataset",
    "FileDataset",
    "FolderDataset",
    "Sample",
    "SegmentationDataset",
    "SyntheticShapes",
    "VOCDataset",
    "synthetic_info",
]
