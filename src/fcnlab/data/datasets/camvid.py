"""CamVid, 11 classes, in the SegNet layout (11 = void, ignored).

A split comes from ``root/{split}.txt`` whose lines are ``image label``: paths relative to
``root``, or the SegNet release's absolute ``/SegNet/CamVid/train/x.png`` paths, which are
mapped to ``root`` by their last two components. If a listed image is missing, the same stem
with another image suffix (``.png`` <-> ``.jpg``) is used, so re-encoded copies load from the
original lists. Without a list file the split is the folder pair ``{split}/`` and
``{split}annot/``, paired by stem. ``trainval`` without a list joins ``train`` and ``val``.
"""

from __future__ import annotations

from pathlib import Path

from fcnlab.data.classes import CAMVID_INFO
from fcnlab.data.datasets.base import FileDataset, Sample, Transform
from fcnlab.data.decode import IMAGE_SUFFIXES, index_by_stem, read_text_file
from fcnlab.errors import FcnlabError


class CamVidDataset(FileDataset):
    """CamVid 11-class (SegNet split): 480x360 road scenes, 11 = void (ignored)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        skip_missing: bool = False,
    ) -> None:
        root = Path(root)
        samples = camvid_samples(root, split)
        super().__init__(
            samples, CAMVID_INFO, transform, split=split, root=root, skip_missing=skip_missing
        )


def camvid_samples(root: Path, split: str) -> list[Sample]:
    """The image/label pairs of ``split``, from its list file or its folders."""
    list_file = root / f"{split}.txt"
    if list_file.is_file():
        return samples_from_list(root, list_file)
    if (root / split).is_dir():
        return samples_from_folders(root / split, root / f"{split}annot")
    if split == "trainval":
        return camvid_samples(root, "train") + camvid_samples(root, "val")
    raise FcnlabError(
        f"CamVid split '{split}' not found under {root}: expected {split}.txt or the folders "
        f"{split}/ and {split}annot/."
    )


def samples_from_list(root: Path, list_file: Path) -> list[Sample]:
    samples = []
    for number, line in enumerate(read_text_file(list_file).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2:
            raise FcnlabError(
                f"line {number} of {list_file} should be 'image label' but reads {line.strip()!r}; "
                "fix that line."
            )
        image = with_existing_suffix(map_to_root(root, tokens[0]))
        label = map_to_root(root, tokens[1])
        samples.append(Sample(image.stem, image, label))
    return samples


def map_to_root(root: Path, listed: str) -> Path:
    """A listed path under ``root``: relative as is, absolute by its last two components."""
    path = Path(listed)
    if path.is_absolute():
        return root.joinpath(*path.parts[-2:])
    return root / path


def with_existing_suffix(path: Path) -> Path:
    """``path``, or the same stem with another image suffix if only that one exists."""
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        other = path.with_suffix(suffix)
        if other.is_file():
            return other
    return path


def samples_from_folders(image_dir: Path, label_dir: Path) -> list[Sample]:
    if not label_dir.is_dir():
        raise FcnlabError(
            f"CamVid folder {image_dir} has no label folder {label_dir.name}/ beside it; add it."
        )
    labels = index_by_stem(label_dir, (".png",))
    return [
        Sample(stem, image, labels.get(stem, label_dir / f"{stem}.png"))
        for stem, image in index_by_stem(image_dir).items()
    ]
