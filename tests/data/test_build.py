"""build_dataset: names, roots, options, empty splits, and the __getitem__ contract."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from fcnlab.data import DATASETS, CamVidDataset, SyntheticShapes, build_dataset, train_transforms
from fcnlab.errors import FcnlabError


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(FcnlabError, match="unknown dataset 'cityscapes'; valid names are voc"):
        build_dataset("cityscapes", ".", "train")
    assert set(DATASETS) == {"voc", "camvid", "folder", "synthetic"}


def test_roots_are_required_and_must_exist(tmp_path):
    with pytest.raises(FcnlabError, match="dataset 'camvid' needs a root folder"):
        build_dataset("camvid", None, "train")
    with pytest.raises(FcnlabError, match=r"root folder .*nowhere for dataset 'voc' does not"):
        build_dataset("voc", tmp_path / "nowhere", "train")
    assert isinstance(build_dataset("synthetic", None, "val"), SyntheticShapes)


def test_unknown_options_list_the_valid_ones(tmp_path):
    with pytest.raises(FcnlabError, match=r"no option\(s\) colour; valid options are num_classes"):
        build_dataset("synthetic", None, "train", colour=3)


def test_empty_split_names_split_and_root(tmp_path, files):
    files.text(tmp_path / "train.txt", [])
    message = f"split 'train' of camvid under {tmp_path} has no samples"
    with pytest.raises(FcnlabError, match=re.escape(message)):
        build_dataset("camvid", tmp_path, "train")


def test_getitem_applies_the_transform_and_returns_int64_hxw(tmp_path, files):
    files.image(tmp_path / "train" / "a.png")
    files.mask(tmp_path / "trainannot" / "a.png", files.grid(labels=(1, 11)))
    seen = []

    def transform(image, mask):
        seen.append((image.dtype, tuple(image.shape), mask.dtype))
        return image.flip(-1), mask[None]  # a 1xHxW uint8 mask, as some user code returns

    dataset = build_dataset("camvid", tmp_path, "train", transform)
    assert isinstance(dataset, CamVidDataset)
    image, mask = dataset[0]
    assert seen == [(torch.uint8, (3, 6, 8), torch.uint8)]
    assert image.shape == (3, 6, 8)
    assert mask.dtype == torch.int64 and mask.shape == (6, 8)
    assert (mask.numpy() == files.grid(labels=(1, 11))).all()
    assert (image.numpy() == np.array(dataset.load(0)[0]).transpose(2, 0, 1)[..., ::-1]).all()


def test_masks_widen_when_the_ignore_index_does_not_fit_uint8(tmp_path, files):
    (tmp_path / "classes.yaml").write_text("names: [bg, fg]\nignore_index: 1000\n")
    files.image(tmp_path / "images" / "a.png")
    files.mask(tmp_path / "masks" / "a.png", np.ones((6, 8)))
    transform = train_transforms((10, 8), scale_range=(1.0, 1.0), ignore_index=1000)
    _, mask = build_dataset("folder", tmp_path, "all", transform)[0]
    assert set(mask.unique().tolist()) == {1, 1000}  # padding rows hold 1000, not 1000 % 256
