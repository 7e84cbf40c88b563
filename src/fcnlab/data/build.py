"""The dataset factory: :data:`DATASETS` by name and :func:`build_dataset`, the one entry point
the engine, the CLI and the dataset checks use (re-exported by :mod:`fcnlab.data`)."""

from __future__ import annotations

from pathlib import Path

from fcnlab.data.datasets import (
    CamVidDataset,
    FolderDataset,
    SegmentationDataset,
    SyntheticShapes,
    VOCDataset,
)
from fcnlab.data.datasets.base import Transform
from fcnlab.data.options import check_options
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
