"""Checkpoints saved before the model-core refactor still load and predict the same masks.

The fixtures in tests/fixtures/legacy were written by tests/fixtures/make_legacy.py as of
commit ec979bb (two small models with random weights and moved BN statistics, an image, and
the masks that fcnlab predicted for it then); the script used that day's API and is gone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcnlab.infer.predictor import Predictor

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"
NAMES = ["fcn8s_mobilenet_v2", "deeplabv3plus_mobilenet_v2"]


@pytest.mark.parametrize("name", NAMES)
def test_legacy_checkpoint_predicts_the_saved_mask(name):
    image = Image.open(LEGACY / "image.png").convert("RGB")
    expected = np.load(LEGACY / f"{name}.mask.npy")
    assert len(np.unique(expected)) > 1  # the fixture is not a constant mask
    mask = Predictor.load(LEGACY / f"{name}.pt", "eager").predict(image).mask
    assert mask.shape == expected.shape == (45, 61)
    np.testing.assert_array_equal(mask, expected)
