"""check_dataset collects every problem; pixel counts and median-frequency weights."""

from __future__ import annotations

import numpy as np
import pytest

from fcnlab.data import (
    check_dataset,
    class_pixel_counts,
    format_report,
    median_frequency_weights,
)
from fcnlab.data.datasets.folder import FolderDataset
from fcnlab.data.datasets.synthetic import synthetic_info


@pytest.fixture
def good_root(tmp_path, files):
    (tmp_path / "classes.yaml").write_text("names: [bg, cat, dog]\n")
    files.image(tmp_path / "images" / "good1.png")
    files.mask(tmp_path / "masks" / "good1.png", files.grid(labels=(0, 1, 2)))
    files.image(tmp_path / "images" / "good2.png")
    ones = np.ones((6, 8))
    ones[:, 0] = 255
    files.mask(tmp_path / "masks" / "good2.png", ones)
    return tmp_path


def test_check_reports_every_bad_sample_without_stopping(good_root, files):
    files.image(good_root / "images" / "nomask.png")
    (good_root / "images" / "corrupt.png").write_bytes(b"garbage")
    files.mask(good_root / "masks" / "corrupt.png", np.zeros((6, 8)))
    files.image(good_root / "images" / "small.png")
    files.mask(good_root / "masks" / "small.png", np.zeros((5, 8)))
    files.image(good_root / "images" / "labels.png")
    files.mask(good_root / "masks" / "labels.png", np.full((6, 8), 7))

    report = check_dataset("folder", good_root, "all")
    assert report.num_samples == 6
    assert not report.ok
    assert len(report.problems) == 4
    by_stem = {problem.split(":")[0]: problem for problem in report.problems}
    assert set(by_stem) == {"nomask", "corrupt", "small", "labels"}
    assert "not found" in by_stem["nomask"]
    assert "cannot be read" in by_stem["corrupt"]
    assert "is 5x8 (HxW) but image" in by_stem["small"]
    assert "label values 7" in by_stem["labels"]
    assert report.sizes == {(6, 8): 2}
    # good1 cycles 0,1,2 over 8 columns (3, 3, 2 per row); good2 is 1 with a 255 column
    assert report.class_histogram.tolist() == [18, 18 + 42, 12, 6]

    text = format_report(report, FolderDataset(good_root, "all", skip_missing=True).info)
    assert "samples: 6" in text
    assert "min 6x8, max 6x8" in text
    assert "problems: 4" in text
    assert "dog" in text and "ignored" in text
    assert "60" in text  # cat's pixels


def test_check_of_a_clean_synthetic_split():
    report = check_dataset("synthetic", None, "val", length=4, size=(20, 24))
    assert report.ok and report.problems == []
    assert report.sizes == {(20, 24): 4}
    assert report.class_histogram.sum() == 4 * 20 * 24
    assert report.class_histogram[-1] == 0
    text = format_report(report, synthetic_info(4))
    assert "problems: 0 (all good)" in text
    assert "triangle" in text


def test_class_pixel_counts_are_per_image_and_skip_ignored(good_root):
    counts = class_pixel_counts(FolderDataset(good_root, "all"))
    assert counts.dtype == np.int64
    assert counts.tolist() == [[18, 18, 12], [0, 42, 0]]


def test_median_frequency_weights_match_a_hand_computation():
    counts = np.array(
        [
            [6, 2, 0, 0],  # 8 labelled pixels
            [4, 0, 4, 0],  # 8
            [0, 6, 0, 0],  # 6
        ]
    )
    # freq = pixels of c / pixels of the images containing c
    freq = np.array([10 / 16, 8 / 14, 4 / 8])
    median = np.median(freq)  # 8 / 14
    expected = [median / freq[0], 1.0, median / freq[2], 0.0]  # class 3 never occurs
    weights = median_frequency_weights(counts)
    assert weights.dtype == np.float32
    assert np.allclose(weights, expected)
    assert np.allclose(weights, [0.9142857, 1.0, 1.1428571, 0.0])
    with pytest.raises(ValueError, match="per-image counts"):
        median_frequency_weights(counts.sum(axis=0))
    assert median_frequency_weights(np.zeros((2, 3))).tolist() == [0.0, 0.0, 0.0]
