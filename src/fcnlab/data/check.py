"""Checking a dataset end to end, and the class statistics training needs.

- :func:`check_dataset` decodes every pair and collects one line per bad sample (missing
  file, unreadable file, size mismatch, bad labels) instead of stopping at the first, plus
  image sizes and a pixel histogram; :func:`format_report` prints it as a table.
- :func:`class_pixel_counts` counts pixels per class per image (``np.bincount`` on the raw
  masks); :func:`median_frequency_weights` turns those counts into SegNet's median-frequency
  class weights for the loss.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fcnlab.data.build import build_dataset
from fcnlab.data.datasets.base import SegmentationDataset
from fcnlab.errors import FcnlabError
from fcnlab.labels import LabelSpace


@dataclass
class DataReport:
    """What :func:`check_dataset` found. ``class_histogram`` ends with the ignored pixels."""

    num_samples: int
    sizes: dict[tuple[int, int], int]
    class_histogram: np.ndarray
    problems: list[str] = field(default_factory=list)
    info: LabelSpace | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def min_size(self) -> tuple[int, int] | None:
        """The smallest (H, W) by pixel count, or None if nothing could be read."""
        return min(self.sizes, key=lambda hw: (hw[0] * hw[1], hw)) if self.sizes else None

    @property
    def max_size(self) -> tuple[int, int] | None:
        return max(self.sizes, key=lambda hw: (hw[0] * hw[1], hw)) if self.sizes else None


def mask_histogram(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class 0..num_classes-1 of a checked mask; every other value counts as ignored."""
    if mask.dtype == np.uint8:
        counts = np.bincount(mask.ravel(), minlength=256)
    else:
        flat = mask.ravel()
        counts = np.bincount(flat[(flat >= 0) & (flat < num_classes)], minlength=num_classes)
    valid = counts[:num_classes]
    return np.append(valid, mask.size - valid.sum()).astype(np.int64)


def check_dataset(name: str, root: str | Path | None, split: str, **options: object) -> DataReport:
    """Load every sample of a split and report everything wrong with it."""
    dataset = build_dataset(name, root, split, **{**options, "skip_missing": True})
    num_classes = dataset.info.num_classes
    histogram = np.zeros(num_classes + 1, dtype=np.int64)
    sizes: Counter[tuple[int, int]] = Counter()
    problems = list(dataset.missing)
    for index in range(len(dataset)):
        try:
            _, mask = dataset.load(index)
        except FcnlabError as error:
            problems.append(f"{dataset.names[index]}: {error}")
            continue
        sizes[(int(mask.shape[0]), int(mask.shape[1]))] += 1
        histogram += mask_histogram(mask, num_classes)
    return DataReport(
        len(dataset) + len(dataset.missing), dict(sizes), histogram, problems, dataset.info
    )


def format_report(report: DataReport, info: LabelSpace) -> str:
    """A readable summary: sample count, sizes, a per-class pixel table and the problems."""
    lines = [f"samples: {report.num_samples}"]
    if report.sizes:
        (min_h, min_w), (max_h, max_w) = report.min_size, report.max_size
        lines.append(f"sizes (HxW): min {min_h}x{min_w}, max {max_h}x{max_w}")
        for (h, w), count in sorted(report.sizes.items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"  {h}x{w}: {count}")
    total = max(int(report.class_histogram.sum()), 1)
    width = max(len(n) for n in (*info.classes, "ignored"))
    lines.append(f"{'index':>5}  {'class':<{width}}  {'pixels':>14}  {'share':>7}")
    labels = [*enumerate(info.classes), (info.ignore_index, "ignored")]
    for (index, class_name), pixels in zip(labels, report.class_histogram.tolist(), strict=True):
        share = 100.0 * pixels / total
        lines.append(f"{index:>5}  {class_name:<{width}}  {pixels:>14,}  {share:>6.2f}%")
    lines.append(f"problems: {len(report.problems)}" + ("" if report.problems else " (all good)"))
    lines.extend(f"  {problem}" for problem in report.problems)
    return "\n".join(lines)


def class_pixel_counts(dataset: SegmentationDataset) -> np.ndarray:
    """Pixels of each class in each image: an int64 (num_images, num_classes) array.

    Ignored pixels are not counted. Only masks are decoded.
    """
    num_classes = dataset.info.num_classes
    counts = np.zeros((len(dataset), num_classes), dtype=np.int64)
    for index in range(len(dataset)):
        counts[index] = mask_histogram(dataset.load_mask(index), num_classes)[:num_classes]
    return counts


def median_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """SegNet's median-frequency balancing from per-image class counts.

    ``freq_c`` = pixels of class c / labelled pixels of the images where c is present;
    ``w_c = median(freq) / freq_c``, the median over the classes that occur. Classes that
    never occur get weight 0. Returns float32 (num_classes,).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(
            "median_frequency_weights needs per-image counts of shape (num_images, "
            f"num_classes), as class_pixel_counts returns; got shape {counts.shape}"
        )
    present = counts > 0
    image_pixels = counts.sum(axis=1, keepdims=True)
    class_pixels = counts.sum(axis=0)
    pixels_where_present = (present * image_pixels).sum(axis=0)
    occurs = class_pixels > 0
    weights = np.zeros(counts.shape[1], dtype=np.float64)
    if occurs.any():
        frequency = class_pixels[occurs] / pixels_where_present[occurs]
        weights[occurs] = np.median(frequency) / frequency
    return weights.astype(np.float32)
