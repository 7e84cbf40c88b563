"""Pascal VOC 2012 layout, the SBD train_aug split, download and error paths."""

from __future__ import annotations

import shutil
import sys
import types
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets.voc import DATASET_YEAR_DICT

from fcnlab.data import VOC_INFO, VOCDataset, eval_transforms
from fcnlab.data.datasets import voc as voc_module
from fcnlab.errors import FcnlabError


def test_splits_and_samples(voc_root, files):
    train = VOCDataset(voc_root, "train")
    assert train.info is VOC_INFO
    assert train.names == ["a", "b"]
    assert len(VOCDataset(voc_root, "val")) == 1
    assert len(VOCDataset(voc_root, "trainval")) == 3
    image, mask = train.load(0)
    assert image.mode == "RGB"
    assert image.size == (8, 6)
    assert (mask == files.grid()).all()  # palette PNG: pixel value = class index


def test_getitem_gives_normalised_image_and_int64_mask(voc_root, files):
    image, mask = VOCDataset(voc_root, "train", eval_transforms())[1]
    assert image.dtype == torch.float32
    assert image.shape == (3, 6, 8)
    assert mask.dtype == torch.int64
    assert mask.tolist() == files.grid().tolist()
    raw_image, raw_mask = VOCDataset(voc_root, "train")[1]
    assert raw_image.dtype == torch.uint8
    assert raw_image.shape == (3, 6, 8)
    assert raw_mask.dtype == torch.int64


def test_root_may_be_the_voc2012_folder_itself(voc_root):
    assert VOCDataset(voc_root / "VOCdevkit" / "VOC2012", "train").names == ["a", "b"]


def test_missing_or_incomplete_folders_say_what_is_missing(tmp_path, voc_root):
    with pytest.raises(FcnlabError, match=r"VOCdevkit/VOC2012/JPEGImages.*download=True"):
        VOCDataset(tmp_path / "VOCdevkit", "train")
    with pytest.raises(FcnlabError, match="no split 'test'; choose one of train, val"):
        VOCDataset(voc_root, "test")
    voc = voc_root / "VOCdevkit" / "VOC2012"
    (voc / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(FcnlabError, match=r"incomplete: ImageSets/Segmentation/val\.txt"):
        VOCDataset(voc_root, "val")
    shutil.rmtree(voc / "SegmentationClass")
    with pytest.raises(FcnlabError, match=r"incomplete: SegmentationClass/ is missing"):
        VOCDataset(voc_root, "train")


def test_missing_listed_files_raise_or_are_skipped(voc_root):
    (voc_root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(FcnlabError, match=r"1 of 2 samples .* \(first: b: image .*b\.jpg"):
        VOCDataset(voc_root, "train")
    dataset = VOCDataset(voc_root, "train", skip_missing=True)
    assert dataset.names == ["a"]
    assert dataset.missing[0].startswith("b: image")


def test_bad_labels_and_size_mismatch_name_the_files(voc_root, files):
    labels = voc_root / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    files.mask(labels / "a.png", np.full((6, 8), 30), palette=True)
    files.mask(labels / "b.png", np.zeros((5, 8)), palette=True)
    dataset = VOCDataset(voc_root, "train")
    with pytest.raises(FcnlabError, match=r"a\.png has label values 30 outside 0\.\.20"):
        dataset.load(0)
    with pytest.raises(FcnlabError, match=r"b\.png is 5x8 \(HxW\) but image .*b\.jpg is 6x8"):
        dataset.load(1)


def test_download_offline_explains_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr(voc_module, "download_and_extract_archive", offline)
    with pytest.raises(FcnlabError) as caught:
        VOCDataset(tmp_path / "new", "train", download=True)
    message = str(caught.value)
    assert "could not download VOCtrainval_11-May-2012.tar" in message
    assert "offline" in message
    assert str(tmp_path / "new") in message


def test_download_uses_torchvisions_checksum_and_skips_when_present(
    tmp_path, voc_root, monkeypatch
):
    calls = []

    def fake_download(url, root, filename, md5):
        calls.append((url, filename, md5))
        shutil.copytree(voc_root / "VOCdevkit", tmp_path / "fresh" / "VOCdevkit")

    monkeypatch.setattr(voc_module, "download_and_extract_archive", fake_download)
    dataset = VOCDataset(tmp_path / "fresh", "val", download=True)
    assert dataset.names == ["c"]
    expected = DATASET_YEAR_DICT["2012"]
    assert calls == [(expected["url"], expected["filename"], expected["md5"])]
    VOCDataset(tmp_path / "fresh", "val", download=True)
    assert len(calls) == 1  # already there: no second download


def test_train_aug_from_segmentation_class_aug(voc_root, files):
    voc = voc_root / "VOCdevkit" / "VOC2012"
    for seed, stem in enumerate(("a", "c", "d")):
        files.mask(voc / "SegmentationClassAug" / f"{stem}.png", np.full((6, 8), seed + 1))
    files.image(voc / "JPEGImages" / "d.jpg")
    dataset = VOCDataset(voc_root, "train_aug")
    assert dataset.names == ["a", "d"]  # every Aug label except VOC val (c)
    assert (dataset.load(1)[1] == 3).all()
    files.text(voc / "ImageSets" / "SegmentationAug" / "train_aug.txt", ["/JPEGImages/d.jpg x"])
    assert VOCDataset(voc_root, "train_aug").names == ["d"]


def _fake_scipy(monkeypatch):
    io = types.ModuleType("scipy.io")
    io.loadmat = lambda path: {"GTcls": [{"Segmentation": [np.load(path)]}]}
    scipy = types.ModuleType("scipy")
    scipy.io = io
    monkeypatch.setitem(sys.modules, "scipy", scipy)
    monkeypatch.setitem(sys.modules, "scipy.io", io)


def _sbd(voc_root, files):
    sbd = voc_root / "benchmark_RELEASE" / "dataset"
    files.text(sbd / "train.txt", ["a", "d"])
    files.text(sbd / "val.txt", ["c", "e"])
    for stem in ("a", "c", "d", "e"):
        (sbd / "cls").mkdir(parents=True, exist_ok=True)
        with open(sbd / "cls" / f"{stem}.mat", "wb") as handle:
            np.save(handle, np.full((6, 8), 7, dtype=np.uint8))
    files.image(voc_root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "d.jpg")
    files.image(sbd / "img" / "e.jpg")  # only SBD has this image
    return sbd


def test_train_aug_from_sbd_mat_files(voc_root, files, monkeypatch):
    _fake_scipy(monkeypatch)
    sbd = _sbd(voc_root, files)
    dataset = VOCDataset(voc_root, "train_aug")
    # (SBD train | SBD val | VOC train) - VOC val
    assert dataset.names == ["a", "b", "d", "e"]
    assert dataset.samples[0].mask.suffix == ".png"  # VOC's own label wins
    assert dataset.samples[2].mask == sbd / "cls" / "d.mat"
    assert dataset.samples[3].image == sbd / "img" / "e.jpg"
    image, mask = dataset.load(3)
    assert image.size == (8, 6)
    assert (mask == 7).all()
    moved = voc_root / "elsewhere"
    sbd.rename(moved)
    assert len(VOCDataset(voc_root, "train_aug", sbd_root=moved)) == 4


def test_train_aug_without_scipy_names_the_missing_package(voc_root, files, monkeypatch):
    _sbd(voc_root, files)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(FcnlabError, match=r"needs scipy, which is not installed; run `pip install"):
        VOCDataset(voc_root, "train_aug")


def test_train_aug_without_labels_says_where_to_put_them(voc_root, tmp_path):
    with pytest.raises(FcnlabError, match=r"SegmentationClassAug PNGs or the SBD release"):
        VOCDataset(voc_root, "train_aug")
    with pytest.raises(FcnlabError, match=r"sbd_root .* is not an SBD dataset folder"):
        VOCDataset(voc_root, "train_aug", sbd_root=tmp_path / "nothing")


def test_corrupt_jpeg_names_the_file(voc_root):
    (voc_root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "a.jpg").write_bytes(b"\xff\xd8junk")
    with pytest.raises(FcnlabError, match=r"image file .*a\.jpg cannot be read"):
        VOCDataset(voc_root, "train").load(0)
    assert isinstance(VOCDataset(voc_root, "train").load(1)[0], Image.Image)
