"""Paired transforms: image and mask stay aligned, labels are never interpolated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from fcnlab.data import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from fcnlab.data.transforms import RandomScale

CLASS_COLORS = np.array(
    [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 255, 255]]
)
RAW = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # output image = input / 255


def _pair(image: np.ndarray, mask: np.ndarray):
    pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.uint8))
    return tv_tensors.Image(pixels), tv_tensors.Mask(torch.from_numpy(mask.astype(np.uint8)))


def _blocks(seed: int, height: int = 48, width: int = 72, block: int = 12):
    """An image whose colour encodes the class, in random blocks."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(CLASS_COLORS), (height // block, width // block))
    mask = np.kron(classes, np.ones((block, block), dtype=np.int64))
    return CLASS_COLORS[mask], mask


@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_image_and_mask_stay_aligned_under_scale_crop_flip(blur):
    transform = train_transforms(
        (40, 56), scale_range=(0.5, 2.0), ignore_index=255, blur=blur, **RAW
    )
    padded_runs = 0
    for seed in range(12):
        torch.manual_seed(seed)
        image, mask = transform(*_pair(*_blocks(seed)))
        assert image.shape == (3, 40, 56) and mask.shape == (40, 56)
        pixels = image.permute(1, 2, 0).numpy() * 255.0
        labels = mask.numpy()
        pad = labels == 255
        padded_runs += bool(pad.any())
        assert np.abs(pixels[pad]).max(initial=0) < 1e-4  # the image is padded with 0
        distance = ((pixels[:, :, None, :] - CLASS_COLORS[None, None]) ** 2).sum(axis=3)
        pure = (distance.min(axis=2) < 10.0**2) & ~pad  # not blended by bilinear resizing
        assert pure.sum() >= 0.3 * (~pad).sum()
        agree = distance.argmin(axis=2)[pure] == labels[pure]
        assert agree.mean() > 0.98, f"seed {seed}: only {agree.mean():.3f} aligned"
    assert padded_runs > 0


def test_labels_are_never_interpolated():
    rng = np.random.default_rng(0)
    mask = rng.choice([0, 3, 7], size=(30, 34))  # one-pixel noise: worst case for resizing
    image = rng.integers(0, 256, (30, 34, 3))
    transform = train_transforms((24, 24), scale_range=(0.3, 2.7), color_jitter=0.4, blur=0.5)
    for seed in range(20):
        torch.manual_seed(seed)
        _, out = transform(*_pair(image, mask))
        assert set(out.unique().tolist()) <= {0, 3, 7, 255}


def test_crop_padding_uses_the_given_ignore_index():
    image, mask = _blocks(1, height=10, width=12, block=2)
    transform = train_transforms((32, 32), scale_range=(1.0, 1.0), ignore_index=11, **RAW)
    torch.manual_seed(0)
    out_image, out_mask = transform(*_pair(image, mask))
    padding = out_mask == 11
    assert padding.sum() >= 32 * 32 - 10 * 12
    assert (out_image[:, padding] == 0).all()
    assert set(out_mask[~padding].unique().tolist()) <= set(np.unique(mask).tolist())


def test_base_scale_resizes_masks_with_nearest_neighbour():
    image, mask = _blocks(2, height=40, width=60, block=1)  # every pixel its own class
    transform = train_transforms((20, 30), scale_range=(1.0, 1.0), hflip=False, base_scale=0.5)
    _, out = transform(*_pair(image, mask))
    assert (out.numpy() == mask[::2, ::2]).all()  # nearest picks one source pixel, no blending
    size = RandomScale((1.0, 1.0), base_scale=0.25).make_params([_pair(image, mask)[1]])
    assert size == {"size": [10, 15]}


def test_colour_jitter_changes_the_image_only():
    image, mask = _blocks(3)
    plain = train_transforms((48, 72), scale_range=(1.0, 1.0), hflip=False)
    jitter = train_transforms((48, 72), scale_range=(1.0, 1.0), hflip=False, color_jitter=0.5)
    torch.manual_seed(0)
    plain_image, plain_mask = plain(*_pair(image, mask))
    torch.manual_seed(0)
    jitter_image, jitter_mask = jitter(*_pair(image, mask))
    assert (plain_mask.numpy() == mask).all() and (jitter_mask == plain_mask).all()
    assert not torch.allclose(plain_image, jitter_image)


def test_eval_transforms_normalise_at_full_size():
    rng = np.random.default_rng(0)
    image, mask = rng.integers(0, 256, (7, 9, 3)), rng.integers(0, 5, (7, 9))
    pixels, labels = _pair(image, mask)
    out_image, out_mask = eval_transforms()(pixels, tv_tensors.Mask(labels[None]))
    mean, std = (
        torch.tensor(IMAGENET_MEAN)[:, None, None],
        torch.tensor(IMAGENET_STD)[:, None, None],
    )
    expected = (torch.from_numpy(image.transpose(2, 0, 1)).float() / 255 - mean) / std
    assert out_image.dtype == torch.float32
    assert torch.allclose(out_image, expected, atol=1e-5)
    assert out_mask.dtype == torch.int64 and out_mask.shape == (7, 9)  # channel squeezed
    assert (out_mask.numpy() == mask).all()


def test_random_scale_rejects_bad_ranges():
    with pytest.raises(ValueError, match="must be > 0"):
        RandomScale((0.0, 2.0))


def test_blur_smooths_the_image_only():
    image, mask = _pair(*_blocks(1))
    sharp = train_transforms((48, 72), scale_range=(1.0, 1.0), hflip=False, **RAW)
    blurred = train_transforms((48, 72), (1.0, 1.0), hflip=False, blur=1.0, **RAW)
    energy = lambda x: ((x[..., 1:] - x[..., :-1]) ** 2).sum().item()  # noqa: E731
    a, mask_a = sharp(image, mask)
    ratios = []
    for seed in range(8):  # sigma is drawn per call: from almost none to 1.5 pixels
        torch.manual_seed(seed)
        b, mask_b = blurred(image, mask)
        assert torch.equal(mask_b, mask_a) and torch.equal(mask_a, mask.long())
        assert torch.allclose(a.mean(), b.mean(), atol=0.02)  # the same picture, softened
        ratios.append(energy(b) / energy(a))
    assert max(ratios) <= 1.0 + 1e-6 and min(ratios) < 0.6
