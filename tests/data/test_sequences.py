"""Held-out sequences: whole drives kept out of training, never read by it, scored apart."""

from __future__ import annotations

import pytest

from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.data import CamVidDataset, class_pixel_counts
from fcnlab.data.datasets import base
from fcnlab.data.sequences import (
    balance_sequences,
    hold_out,
    select_sequences,
    sequence_of,
    sequences_in,
)
from fcnlab.engine.setup import _datasets
from fcnlab.errors import FcnlabError

STEMS = ["0001TP_006690", "0001TP_006720", "0006R0_f00930", "0006R0_f00960", "0016E5_00390"]


@pytest.fixture
def drives(tmp_path, files):
    """A CamVid root whose train split holds frames of three drives (sequences)."""
    for seed, stem in enumerate(STEMS):
        files.image(tmp_path / "train" / f"{stem}.jpg", height=32, width=48, seed=seed)
        files.mask(tmp_path / "trainannot" / f"{stem}.png", files.grid(32, 48, (0, 3, 11)))
    files.text(tmp_path / "train.txt", [f"train/{s}.jpg trainannot/{s}.png" for s in STEMS])
    files.image(tmp_path / "val" / "0016E5_07959.jpg", height=32, width=48)
    files.mask(tmp_path / "valannot" / "0016E5_07959.png", files.grid(32, 48, (0, 3)))
    files.text(tmp_path / "val.txt", ["val/0016E5_07959.jpg valannot/0016E5_07959.png"])
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """Every image and mask file the data layer decodes, in order."""
    seen: list[str] = []
    for name in ("read_image", "read_mask"):
        original = getattr(base, name)

        def spy(path, *args, _original=original, **kwargs):
            seen.append(str(path))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(base, name, spy)
    return seen


def test_sequence_is_the_prefix_before_the_first_underscore():
    assert sequence_of("0006R0_f00930") == "0006R0"
    assert sequence_of("plain") == "plain"


def test_hold_out_splits_by_sequence_and_keeps_the_files_apart(drives):
    dataset = CamVidDataset(drives, "train")
    assert sequences_in(dataset) == ["0001TP", "0006R0", "0016E5"]
    train, held = hold_out(dataset, ["0006R0"])
    assert train.names == ["0001TP_006690", "0001TP_006720", "0016E5_00390"]
    assert held.names == ["0006R0_f00930", "0006R0_f00960"]
    files = {p.name for s in train.samples for p in (s.image, s.mask)}
    assert not any(name.startswith("0006R0") for name in files)
    assert {s.image.name for s in held.samples} == {"0006R0_f00930.jpg", "0006R0_f00960.jpg"}
    image, mask = held.load(1)
    reference = dataset.load(3)
    assert image.size == reference[0].size and (mask == reference[1]).all()


def test_no_file_of_a_held_out_sequence_is_read_for_training(drives, reads):
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "data.name=camvid",
            f"data.root={drives}",
            "data.crop_size=[32, 48]",
            "data.holdout_sequences=[0006R0, 0001TP_006720]",
        ],
    )
    train, _val, held = _datasets(cfg)
    assert train.names == ["0001TP_006690", "0016E5_00390"]
    assert held.names == ["0001TP_006720", "0006R0_f00930", "0006R0_f00960"]
    for index in range(len(train)):
        image, mask = train[index]  # augmented, as the loader sees them
        assert tuple(image.shape) == (3, 32, 48) and tuple(mask.shape) == (32, 48)
    class_pixel_counts(train)  # what median-frequency weights read
    assert reads and not any("0006R0" in path or "0001TP_006720" in path for path in reads)
    reads.clear()
    image, _ = held[0]  # the held-out view evaluates: no augmentation, full size
    assert tuple(image.shape) == (3, 32, 48) and "0001TP_006720" in reads[0]


def test_balancing_repeats_the_frames_of_smaller_sequences(drives, tmp_path, files):
    # Four frames of one drive, one of another: the short drive's frame comes four times.
    stems = ["0016E5_0001", "0016E5_0002", "0016E5_0003", "0016E5_0004", "0001TP_0001"]
    root = tmp_path / "five"
    for seed, stem in enumerate(stems):
        files.image(root / "train" / f"{stem}.jpg", height=32, width=48, seed=seed)
        files.mask(root / "trainannot" / f"{stem}.png", files.grid(32, 48, (0, 3)))
    files.text(root / "train.txt", [f"train/{s}.jpg trainannot/{s}.png" for s in stems])
    balanced = balance_sequences(CamVidDataset(root, "train"))
    assert sorted(balanced.names) == sorted(stems[:4] + ["0001TP_0001"] * 4)
    image, mask = balanced.load(balanced.names.index("0001TP_0001"))
    reference = CamVidDataset(root, "train").load(4)
    assert (mask == reference[1]).all() and image.size == reference[0].size
    # 2, 2 and 1 frames: the 1-frame drive comes twice; one sequence is left as it is.
    assert (
        balance_sequences(CamVidDataset(drives, "train")).names
        == STEMS[:2] + STEMS[2:4] + ["0016E5_00390"] * 2
    )
    only = select_sequences(CamVidDataset(drives, "train"), ["0006R0"])
    assert balance_sequences(only).names == ["0006R0_f00930", "0006R0_f00960"]


def test_balancing_in_training_never_reads_a_held_out_sequence(drives, reads):
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "data.name=camvid",
            f"data.root={drives}",
            "data.crop_size=[32, 48]",
            "data.holdout_sequences=[0006R0]",
            "data.balance_sequences=true",
        ],
    )
    train, _val, held = _datasets(cfg)
    assert sorted(train.names) == ["0001TP_006690", "0001TP_006720"] + ["0016E5_00390"] * 2
    for index in range(len(train)):
        image, _ = train[index]  # augmented, as the loader sees them
        assert tuple(image.shape) == (3, 32, 48)
    assert reads and not any("0006R0" in path for path in reads)
    assert held.names == ["0006R0_f00930", "0006R0_f00960"]


def test_without_held_out_sequences_the_dataset_is_unchanged(drives):
    dataset = CamVidDataset(drives, "train")
    train, held = hold_out(dataset, [])
    assert train is dataset and held is None
    assert select_sequences(dataset, []) is dataset
    assert select_sequences(dataset, ["0016E5"]).names == ["0016E5_00390"]


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        (["0007XX"], r"names sequence '0007XX', but no image .* are 0001TP, 0006R0, 0016E5"),
        (["0001TP", "0006R0", "0016E5"], r"holds out every image of split 'train' \(5\)"),
        ([""], "holds an empty sequence name"),
    ],
)
def test_bad_held_out_sequences_are_refused_in_one_sentence(drives, sequences, message):
    with pytest.raises(FcnlabError, match=message):
        hold_out(CamVidDataset(drives, "train"), sequences)


@pytest.mark.parametrize("value", ["5", "0006R0", "[1, 2]", "{a: 1}"])
def test_the_config_key_takes_a_list_of_names(value):
    with pytest.raises(FcnlabError, match=r"data\.holdout_sequences"):
        apply_overrides(ExperimentConfig(), [f"data.holdout_sequences={value}"])
