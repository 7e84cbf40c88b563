"""The user-data folder layout: class files, index and colour masks, splits, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcnlab.data import FolderDataset
from fcnlab.data.datasets.folder import load_class_table
from fcnlab.errors import FcnlabError

COLORS = [[0, 0, 0], [200, 0, 0], [0, 0, 200]]


def _classes(root, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.yaml").write_text(text)


@pytest.fixture
def index_root(tmp_path, files):
    """images/train (a, b) and images/val (c), index masks, three classes, ignore 9."""
    _classes(tmp_path, "names: [background, road, car]\nignore_index: 9\n")
    for split, stems in (("train", ("a", "b")), ("val", ("c",))):
        for stem in stems:
            files.image(tmp_path / "images" / split / f"{stem}.jpg")
            files.mask(tmp_path / "masks" / split / f"{stem}.png", files.grid(labels=(0, 2, 9)))
    return tmp_path


def test_index_masks_with_split_folders(index_root, files):
    train = FolderDataset(index_root, "train")
    assert train.names == ["a", "b"]
    assert train.info.classes == ("background", "road", "car")
    assert train.info.ignore_index == 9
    assert train.info.name == index_root.name
    assert (train.load(0)[1] == files.grid(labels=(0, 2, 9))).all()
    assert FolderDataset(index_root, "val").names == ["c"]
    with pytest.raises(FcnlabError, match=r"no split 'test': add images/test/ and masks/test/"):
        FolderDataset(index_root, "test")


def test_colour_masks_with_an_ignore_colour(tmp_path, files):
    _classes(tmp_path, f"names: [bg, red, blue]\ncolors: {COLORS}\nignore_color: [9, 9, 9]\n")
    files.image(tmp_path / "images" / "x.png", height=1, width=4)
    files.rgb(tmp_path / "masks" / "x.png", [[[0, 0, 0], [200, 0, 0], [0, 0, 200], [9, 9, 9]]])
    dataset = FolderDataset(tmp_path, "all")
    assert dataset.info.palette == ((0, 0, 0), (200, 0, 0), (0, 0, 200))
    assert dataset.load(0)[1].tolist() == [[0, 1, 2, 255]]
    files.rgb(tmp_path / "masks" / "x.png", [[[0, 0, 0], [1, 2, 3], [0, 0, 200], [9, 9, 9]]])
    with pytest.raises(
        FcnlabError, match=r"masks/x\.png has colours not in the class table: \(1, 2, 3\)"
    ):
        dataset.load(0)


def test_colour_mask_without_colours_is_explained(tmp_path, files):
    _classes(tmp_path, "names: [bg, fg]\n")
    files.image(tmp_path / "images" / "x.png", height=1, width=2)
    files.rgb(tmp_path / "masks" / "x.png", [[[0, 0, 0], [1, 1, 1]]])
    with pytest.raises(
        FcnlabError,
        match=r"x\.png is a colour \(RGB\) image but no class colours are known; list them",
    ):
        FolderDataset(tmp_path, "all").load(0)


def test_list_file_split_and_json_classes(tmp_path, files):
    (tmp_path / "classes.json").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "classes.json").write_text(json.dumps({"names": ["bg", "fg"], "name": "mine"}))
    for stem in ("p", "q", "r"):
        files.image(tmp_path / "images" / f"{stem}.png")
        files.mask(tmp_path / "masks" / f"{stem}.png", np.ones((6, 8)))
    files.text(tmp_path / "val.txt", ["r", "p.png"])
    dataset = FolderDataset(tmp_path, "val")
    assert dataset.names == ["r", "p"]
    assert dataset.info.name == "mine"
    assert dataset.info.ignore_index == 255
    assert FolderDataset(tmp_path, "all").names == ["p", "q", "r"]


def test_missing_masks_raise_or_are_skipped(index_root):
    (index_root / "masks" / "train" / "b.png").unlink()
    with pytest.raises(FcnlabError, match=r"first: b: mask .*masks/train/b\.png not found"):
        FolderDataset(index_root, "train")
    assert FolderDataset(index_root, "train", skip_missing=True).names == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a, b]", "must be a mapping with a 'names' key"),
        ("names: [a, b]\ncolour: []", r"unknown key\(s\) colour; valid keys are names"),
        ("names: []", "needs 'names' as a non-empty list"),
        ("names: [a, a]", "lists a class name twice"),
        ("names: [a, b]\ncolors: [[0, 0, 0]]", "has 2 names but 1 colors"),
        ("names: [a, b]\ncolors: [[0, 0, 0], [0, 0, 300]]", r"colors entry \[0, 0, 300\]"),
        ("names: [a, b]\ncolors: [[0, 0, 0], [0, 0, 0]]", "the same colour"),
        ("names: [a, b]\nignore_index: 1", "ignore_index 1, which is a class index"),
        ("names: [a, b]\nignore_index: x", "ignore_index 'x'; it must be an integer"),
        ("names: [a, b]\ncolors: [[0,0,0],[1,1,1]]\nignore_color: [1,1,1]", "for a class too"),
        ("names: [a, b", "cannot be parsed"),
    ],
)
def test_class_file_errors_name_file_and_key(tmp_path, text, message):
    _classes(tmp_path, text)
    with pytest.raises(FcnlabError, match=message) as caught:
        load_class_table(tmp_path)
    assert "classes.yaml" in str(caught.value)


def test_layout_errors(tmp_path, files):
    with pytest.raises(FcnlabError, match=r"needs a classes\.yaml"):
        FolderDataset(tmp_path, "all")
    _classes(tmp_path, "names: [a, b]")
    with pytest.raises(FcnlabError, match="has no images/ folder"):
        FolderDataset(tmp_path, "all")
    files.image(tmp_path / "images" / "train" / "a.png")
    (tmp_path / "masks").mkdir()
    with pytest.raises(FcnlabError, match=r"images/train/ exists but .*masks/train does not"):
        FolderDataset(tmp_path, "train")
    with pytest.raises(FcnlabError, match=r"split 'all' of .* has no samples"):
        FolderDataset(tmp_path, "all")
