"""The loss: label smoothing, class-weight schemes, the ignore label."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fcnlab.data import build_dataset, class_pixel_counts, median_frequency_weights
from fcnlab.engine.losses import SegmentationLoss, class_weights


def test_label_smoothing_is_cross_entropys_and_ignores_the_void_label():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    target[0, :2] = 255
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0])
    loss = SegmentationLoss(255, weight, 0.4, label_smoothing=0.1)(logits, target)
    expected = F.cross_entropy(logits, target, weight=weight, ignore_index=255, label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    plain = SegmentationLoss(255, weight, 0.4)(logits, target)
    assert plain.item() != pytest.approx(loss.item(), rel=1e-3)


def test_sqrt_median_frequency_is_the_square_root_of_segnets_weights(tmp_path):
    dataset = build_dataset("synthetic", None, "train", length=6, size=(24, 32))
    full = class_weights("median_frequency", dataset, tmp_path)
    milder = class_weights("sqrt_median_frequency", dataset, tmp_path)  # from the cache
    expected = median_frequency_weights(class_pixel_counts(dataset))
    assert torch.allclose(full, torch.tensor(expected, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(milder, full.sqrt())
    assert class_weights(None, dataset, tmp_path) is None
