"""CamVid in the SegNet layout: both list styles, .png/.jpg images, folder fallback, real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fcnlab.data import CAMVID_INFO, CamVidDataset, check_dataset, class_pixel_counts
from fcnlab.errors import FcnlabError

REPO = Path(__file__).resolve().parents[2]
REAL_CAMVID = Path(os.environ.get("FCNLAB_CAMVID", REPO / ".." / "shared" / "data" / "camvid"))
README_TRAIN_PIXELS = [
    10682767, 14750079, 623349, 20076880, 2845085, 6166762, 743859, 714595, 3719877,
    405385, 184967, 2503995,
]  # fmt: skip


@pytest.fixture
def camvid_root(tmp_path, files):
    """train: relative list, .png images; val: absolute SegNet paths to .png, stored as .jpg."""
    for seed, stem in enumerate(("t1", "t2")):
        files.image(tmp_path / "train" / f"{stem}.png", seed=seed)
        files.mask(tmp_path / "trainannot" / f"{stem}.png", files.grid(labels=(0, 10, 11)))
    files.text(tmp_path / "train.txt", [f"train/{s}.png trainannot/{s}.png" for s in ("t1", "t2")])
    files.image(tmp_path / "val" / "v1.jpg")
    files.mask(tmp_path / "valannot" / "v1.png", files.grid(labels=(3, 4)))
    files.text(tmp_path / "val.txt", ["/SegNet/CamVid/val/v1.png /SegNet/CamVid/valannot/v1.png"])
    return tmp_path


def test_relative_list_with_png_images(camvid_root, files):
    dataset = CamVidDataset(camvid_root, "train")
    assert dataset.info is CAMVID_INFO
    assert dataset.names == ["t1", "t2"]
    image, mask = dataset.load(1)
    assert (np.array(image) == np.array(files.image(camvid_root / "x.png", seed=1))).all()
    assert (mask == files.grid(labels=(0, 10, 11))).all()  # 11 (void) is allowed


def test_absolute_segnet_paths_and_jpg_fallback(camvid_root):
    dataset = CamVidDataset(camvid_root, "val")
    assert dataset.samples[0].image == camvid_root / "val" / "v1.jpg"
    assert dataset.samples[0].mask == camvid_root / "valannot" / "v1.png"
    assert set(np.unique(dataset.load(0)[1])) == {3, 4}


def test_folder_fallback_pairs_by_stem(camvid_root, files):
    files.image(camvid_root / "test" / "b.jpg")
    files.image(camvid_root / "test" / "a.png")
    files.mask(camvid_root / "testannot" / "a.png", np.zeros((6, 8)))
    files.mask(camvid_root / "testannot" / "b.png", np.ones((6, 8)))
    dataset = CamVidDataset(camvid_root, "test")
    assert dataset.names == ["a", "b"]
    assert (dataset.load(1)[1] == 1).all()
    (camvid_root / "testannot" / "a.png").unlink()
    with pytest.raises(FcnlabError, match=r"first: a: mask .*testannot/a\.png not found"):
        CamVidDataset(camvid_root, "test")


def test_trainval_joins_train_and_val(camvid_root):
    assert CamVidDataset(camvid_root, "trainval").names == ["t1", "t2", "v1"]


def test_bad_lines_splits_and_labels(camvid_root, files):
    with pytest.raises(FcnlabError, match=r"split 'test' not found .* test\.txt or the folders"):
        CamVidDataset(camvid_root, "test")
    files.text(camvid_root / "odd.txt", ["train/t1.png trainannot/t1.png", "train/t2.png"])
    with pytest.raises(FcnlabError, match=r"line 2 of .*odd\.txt should be 'image label'"):
        CamVidDataset(camvid_root, "odd")
    files.mask(camvid_root / "trainannot" / "t1.png", np.full((6, 8), 12))
    with pytest.raises(FcnlabError, match=r"t1\.png has label values 12 outside 0\.\.10"):
        CamVidDataset(camvid_root, "train").load(0)


@pytest.mark.skipif(not REAL_CAMVID.is_dir(), reason="the shared CamVid copy is not here")
def test_real_camvid_matches_its_readme():
    train = CamVidDataset(REAL_CAMVID, "train")
    assert len(train) == 367
    assert len(CamVidDataset(REAL_CAMVID, "val")) == 101
    image, mask = train.load(0)
    assert image.size == (480, 360)
    assert mask.shape == (360, 480)
    report = check_dataset("camvid", REAL_CAMVID, "train")
    assert report.problems == []
    assert report.sizes == {(360, 480): 367}
    assert report.class_histogram.tolist() == README_TRAIN_PIXELS
    assert class_pixel_counts(train).sum(axis=0).tolist() == README_TRAIN_PIXELS[:11]
