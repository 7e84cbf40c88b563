"""The generated shapes dataset: deterministic, in range, and separable by colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fcnlab.data import SyntheticShapes, build_dataset, train_transforms
from fcnlab.data.datasets.synthetic import SHAPE_COLORS
from fcnlab.errors import FcnlabError


def _arrays(dataset, index):
    image, mask = dataset.load(index)
    return np.array(image), mask


def test_identical_every_time_and_different_across_index_split_seed():
    first, second = SyntheticShapes(split="train"), SyntheticShapes(split="train")
    for index in (0, 5, 63):
        (a_img, a_mask), (b_img, b_mask) = _arrays(first, index), _arrays(second, index)
        assert (a_img == b_img).all() and (a_mask == b_mask).all()
    assert not (_arrays(first, 0)[0] == _arrays(first, 1)[0]).all()
    assert not (_arrays(first, 0)[0] == _arrays(SyntheticShapes(split="val"), 0)[0]).all()
    assert not (_arrays(first, 0)[0] == _arrays(SyntheticShapes(seed=1), 0)[0]).all()


def test_defaults_sizes_and_value_ranges():
    train, val = SyntheticShapes(split="train"), SyntheticShapes(split="val")
    assert (len(train), len(val)) == (64, 16)
    assert train.info.classes == ("background", "circle", "square", "triangle")
    seen = set()
    for index in range(len(val)):
        image, mask = val.load(index)
        assert image.mode == "RGB" and image.size == (128, 96)
        assert mask.dtype == np.uint8 and mask.shape == (96, 128)
        seen |= set(np.unique(mask).tolist())
    assert seen == {0, 1, 2, 3}
    custom = SyntheticShapes(split="test", num_classes=8, size=(40, 50), length=3)
    assert len(custom) == 3 and custom.load(2)[1].shape == (40, 50)
    assert custom.info.classes[-1] == "ellipse"
    with pytest.raises(IndexError):
        custom.load(3)


def test_shape_pixels_are_nearest_to_their_class_colour():
    dataset = SyntheticShapes(split="val", num_classes=8)
    palette = np.array(SHAPE_COLORS, dtype=np.float64)
    right = total = 0
    for index in range(len(dataset)):
        image, mask = _arrays(dataset, index)
        shape = mask > 0
        distance = ((image[shape][:, None, :] - palette[None]) ** 2).sum(axis=2)
        right += int((distance.argmin(axis=1) + 1 == mask[shape]).sum())
        total += int(shape.sum())
    assert total > 0 and right / total > 0.97


def test_option_errors_and_factory():
    with pytest.raises(FcnlabError, match=r"num_classes is 9; choose 2\.\.8"):
        SyntheticShapes(num_classes=9)
    with pytest.raises(FcnlabError, match="too small"):
        SyntheticShapes(size=(8, 8))
    dataset = build_dataset("synthetic", None, "train", train_transforms((32, 48)), length=2)
    image, mask = dataset[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 48)
    assert mask.dtype == torch.int64 and mask.shape == (32, 48)
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}
