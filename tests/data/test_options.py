"""Dataset options are checked against the constructors' annotations; synthetic splits are fixed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fcnlab.data import build_dataset, check_dataset
from fcnlab.data.datasets.synthetic import SPLITS
from fcnlab.data.options import conform, describe
from fcnlab.errors import FcnlabError


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("size", "abc", "option size must be a list of 2 integers such as [96, 128], not 'abc'"),
        ("size", "[32]", "option size must be a list of 2 integers such as [96, 128], not [32]"),
        ("size", "[32, x]", "option size must be a list of 2 integers such as [96, 128], not "),
        ("size", "[32.5, 40]", "option size must be a list of 2 integers such as [96, 128], not "),
        ("num_classes", "x", "option num_classes must be an integer, not 'x'"),
        ("num_classes", "true", "option num_classes must be an integer, not True"),
        ("length", "many", "option length must be an integer or null, not 'many'"),
        ("seed", "1.5", "option seed must be an integer, not 1.5"),
    ],
)
def test_wrong_types_name_the_option_the_type_and_the_value(option, text, message):
    value = yaml.safe_load(text)  # what `--option key=value` hands over
    full = f"dataset 'synthetic' {message}"
    with pytest.raises(FcnlabError, match=re.escape(full)):
        build_dataset("synthetic", None, "train", **{option: value})
    with pytest.raises(FcnlabError, match=re.escape(full)):
        check_dataset("synthetic", None, "train", **{option: value})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": [8, 64]}, "synthetic size (8, 64) is too small; use at least (16, 16)"),
        ({"num_classes": 1}, "synthetic num_classes is 1; choose 2..8"),
        ({"length": 0}, "synthetic length is 0; it must be at least 1"),
        ({"seed": -1}, "synthetic seed is -1; it must be 0 or more"),
    ],
)
def test_out_of_range_values_are_refused(options, message):
    with pytest.raises(FcnlabError, match=re.escape(message)):
        build_dataset("synthetic", None, "val", **options)


def test_yaml_lists_become_tuples_and_good_values_pass():
    dataset = build_dataset("synthetic", None, "val", size=[16, 20], length=2, seed=3)
    assert dataset.size == (16, 20) and len(dataset) == 2
    assert len(build_dataset("synthetic", None, "val", length=None)) == 16


def test_path_options_of_file_datasets(tmp_path):
    message = "dataset 'voc' option sbd_root must be a path or null, not 5"
    with pytest.raises(FcnlabError, match=re.escape(message)):
        build_dataset("voc", tmp_path, "train", sbd_root=5)
    with pytest.raises(FcnlabError, match="option download must be true or false, not 'yes'"):
        build_dataset("voc", tmp_path, "train", download="yes")
    with pytest.raises(FcnlabError, match="option skip_missing must be true or false, not 7"):
        build_dataset("camvid", tmp_path, "train", skip_missing=7)


def test_synthetic_splits_are_train_val_test():
    assert SPLITS == ("train", "val", "test")
    for split in SPLITS:
        assert len(build_dataset("synthetic", None, split, length=1)) == 1
    message = "synthetic has no split 'nosuch'; choose one of train, val, test."
    with pytest.raises(FcnlabError, match=re.escape(message)):
        build_dataset("synthetic", None, "nosuch")
    with pytest.raises(FcnlabError, match=re.escape(message)):
        check_dataset("synthetic", None, "nosuch")


@pytest.mark.parametrize(
    ("hint", "value", "fits", "converted"),
    [
        (int, 3, True, 3),
        (int, True, False, True),
        (float, 2, True, 2),
        (bool, 0, False, 0),
        (str | Path | None, Path("x"), True, Path("x")),
        (str | Path | None, None, True, None),
        (tuple[int, int], [1, 2], True, (1, 2)),
        (tuple[int, int], (1, 2, 3), False, (1, 2, 3)),
        (int | None, "3", False, "3"),
    ],
)
def test_conform(hint, value, fits, converted):
    assert conform(value, hint) == (fits, converted)


def test_describe():
    assert describe(str | Path | None) == "a path or null"
    assert describe(int | None) == "an integer or null"
    assert describe(tuple[int, str]) == "a list of 2 values"
    assert describe(float) == "a number"
