"""Dataset entries that leave the root or are not readable files: refused by name, never loaded.

One table of bad entries, swept over the CamVid list layout and the folder layout: building
the dataset raises naming the entry, and ``check_dataset`` lists it as a problem.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fcnlab.data import CamVidDataset, FolderDataset, VOCDataset, check_dataset
from fcnlab.data.decode import index_by_stem
from fcnlab.errors import FcnlabError


def _outside(path: Path, files) -> None:
    """A symlink to a real image beside the root (entries sit one folder below the root)."""
    target = path.parents[2] / "outside" / path.name
    files.image(target)
    os.symlink(target, path)


def _loop(path: Path, files) -> None:
    os.symlink(path.name, path)


def _broken(path: Path, files) -> None:
    os.symlink(path.parent / "gone.png", path)


def _folder(path: Path, files) -> None:
    path.mkdir(parents=True)


def _fifo(path: Path, files) -> None:
    os.mkfifo(path)


#: How to spoil one entry, and the words the problem line must contain.
BAD_FILES = {
    "symlink to outside": (_outside, "outside the dataset root"),
    "symlink loop": (_loop, "symlink loop"),
    "broken link": (_broken, "broken link"),
    "folder named like an image": (_folder, "is a folder, not a file"),
    "fifo": (_fifo, "is not a regular file"),
}


def _camvid(root: Path, files) -> Path:
    """CamVid root with train.txt listing a good pair and one named 'bad'."""
    root.mkdir()
    for stem in ("good", "bad"):
        files.mask(root / "trainannot" / f"{stem}.png", np.zeros((6, 8)))
    files.image(root / "train" / "good.png")
    lines = [f"train/{stem}.png trainannot/{stem}.png" for stem in ("good", "bad")]
    files.text(root / "train.txt", lines)
    return root


def _folder_root(root: Path, files) -> Path:
    """Folder root with images good.png and masks good.png, bad.png."""
    root.mkdir()
    (root / "classes.yaml").write_text("names: [bg, fg]\n")
    files.image(root / "images" / "good.png")
    for stem in ("good", "bad"):
        files.mask(root / "masks" / f"{stem}.png", np.zeros((6, 8)))
    return root


LAYOUTS = {
    "camvid": (_camvid, "train", lambda root: root / "train" / "bad.png"),
    "folder": (_folder_root, "all", lambda root: root / "images" / "bad.png"),
}


def _assert_refused(name: str, root: Path, split: str, entry: Path, words: str) -> None:
    cls = CamVidDataset if name == "camvid" else FolderDataset
    with pytest.raises(FcnlabError) as caught:
        cls(root, split)
    message = str(caught.value)
    assert f"bad: image {entry}" in message and words in message
    assert "\n" not in message and message.endswith(".")
    report = check_dataset(name, root, split)
    assert not report.ok
    assert report.num_samples == 2 and report.sizes == {(6, 8): 1}  # good is still checked
    assert len(report.problems) == 1 and report.problems[0].startswith("bad: image")
    assert words in report.problems[0]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_image_entries_are_refused_and_reported(tmp_path, files, layout, case):
    build, split, entry_of = LAYOUTS[layout]
    root = build(tmp_path / "root", files)
    spoil, words = BAD_FILES[case]
    spoil(entry_of(root), files)
    _assert_refused(layout, root, split, entry_of(root), words)


def test_a_spoilt_mask_is_named_too(tmp_path, files):
    root = _folder_root(tmp_path / "root", files)
    files.image(root / "images" / "bad.png")
    (root / "masks" / "bad.png").unlink()
    _loop(root / "masks" / "bad.png", files)
    report = check_dataset("folder", root, "all")
    assert report.problems == [f"bad: mask {root / 'masks' / 'bad.png'} is a symlink loop"]


@pytest.mark.parametrize(
    "line",
    [
        "../outside/bad.png trainannot/bad.png",  # climbs out with ../
        "/SegNet/CamVid/../bad.png trainannot/bad.png",  # absolute, last two parts escape
        "train/../../outside/bad.png trainannot/bad.png",  # in, then out again
        "train/good.png ../outside/bad.png",  # the label escapes
    ],
)
def test_list_lines_that_leave_the_root_are_refused(tmp_path, files, line):
    root = _camvid(tmp_path / "root", files)
    files.image(tmp_path / "outside" / "bad.png")
    files.image(tmp_path / "bad.png")
    files.text(root / "train.txt", ["train/good.png trainannot/good.png", line])
    with pytest.raises(FcnlabError, match=rf"outside the dataset root {root}\b"):
        CamVidDataset(root, "train")
    report = check_dataset("camvid", root, "train")
    assert not report.ok and "outside the dataset root" in report.problems[0]
    assert report.sizes == {(6, 8): 1}  # only the good pair was opened


def test_voc_images_linked_from_outside_are_refused(voc_root, files, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "a.jpg"
    files.image(outside)
    image = voc_root / "VOCdevkit" / "VOC2012" / "JPEGImages" / "a.jpg"
    image.unlink()
    os.symlink(outside, image)
    with pytest.raises(FcnlabError, match=rf"a: image {image} resolves to {outside}, outside"):
        VOCDataset(voc_root, "train")
    report = check_dataset("voc", voc_root, "train")
    assert len(report.problems) == 1 and report.problems[0].startswith("a: image")


def test_skip_missing_leaves_escaping_entries_out_unopened(tmp_path, files):
    root = _camvid(tmp_path / "root", files)
    files.text(root / "train.txt", ["train/good.png trainannot/good.png", "../x.png ../y.png"])
    dataset = CamVidDataset(root, "train", skip_missing=True)
    assert dataset.names == ["good"]
    assert dataset.missing[0].startswith(f"x: image {root / '../x.png'} resolves to")


def test_symlinks_inside_the_root_and_a_symlinked_root_are_fine(tmp_path, files):
    real = _folder_root(tmp_path / "real", files)
    files.image(real / "store" / "bad.png")
    os.symlink(real / "store" / "bad.png", real / "images" / "bad.png")
    os.symlink(real, tmp_path / "link")
    assert FolderDataset(tmp_path / "link", "all").names == ["bad", "good"]
    assert check_dataset("folder", tmp_path / "link", "all").ok


def test_folder_lists_reduce_paths_to_stems_inside_the_root(tmp_path, files):
    root = _folder_root(tmp_path / "root", files)
    files.image(tmp_path / "outside" / "bad.png")
    files.text(root / "train.txt", ["good", "../outside/bad.png"])
    report = check_dataset("folder", root, "train")
    assert report.problems == [f"bad: image {root / 'images' / 'bad.jpg'} not found"]


def test_unlistable_folders_and_unreadable_lists_are_one_sentence(tmp_path, files):
    with pytest.raises(FcnlabError, match=r"folder .*nowhere cannot be listed"):
        index_by_stem(tmp_path / "nowhere")
    root = _camvid(tmp_path / "root", files)
    (root / "train.txt").write_bytes(b"\xff\xfe\x00 binary")
    with pytest.raises(FcnlabError, match=r"list file .*train\.txt cannot be read \(it is not"):
        CamVidDataset(root, "train")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_files_are_reported(tmp_path, files):
    root = _folder_root(tmp_path / "root", files)
    files.image(root / "images" / "bad.png")
    (root / "images" / "bad.png").chmod(0)
    report = check_dataset("folder", root, "all")
    assert report.problems == [
        f"bad: image {root / 'images' / 'bad.png'} cannot be read (permission denied)"
    ]
