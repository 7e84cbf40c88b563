"""The user's own data: ``root/images/*`` and ``root/masks/*``, paired by file stem.

Splits: ``root/images/{split}/`` with ``root/masks/{split}/``; else a list of stems in
``root/{split}.txt`` (images and masks then sit directly in ``images/`` and ``masks/``);
``split='all'`` takes every file directly in ``images/``.

``root/classes.yaml`` (or ``.yml``/``.json``) describes the label space::

    names: [background, road, car]     # required; class i is names[i]
    colors: [[0,0,0], [128,64,128], [64,0,128]]  # optional; needed for colour masks
    ignore_index: 255                  # optional, default 255
    ignore_color: [255, 255, 255]      # optional; colour-mask pixels that are ignored
    name: roads                        # optional dataset name, default the folder name

Masks are index PNGs (mode L/P: pixel = class index) or colour PNGs mapped through
``colors``; a colour not in the table raises, naming the file and the colour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fcnlab.data.classes import Color, LabelSpace, voc_colormap
from fcnlab.data.datasets.base import FileDataset, Sample, Transform
from fcnlab.data.decode import index_by_stem, read_list_file, read_mask
from fcnlab.errors import FcnlabError

CLASS_FILES = ("classes.yaml", "classes.yml", "classes.json")
CLASS_KEYS = ("names", "colors", "ignore_index", "ignore_color", "name")


@dataclass(frozen=True)
class ClassTable:
    """A parsed classes.yaml: the label space, and the colours that colour masks use."""

    info: LabelSpace
    colors: tuple[Color, ...] | None
    ignore_color: Color | None


class FolderDataset(FileDataset):
    """Images and masks in plain folders, described by ``classes.yaml``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        skip_missing: bool = False,
    ) -> None:
        root = Path(root)
        self.table = load_class_table(root)
        samples = folder_samples(root, split)
        super().__init__(
            samples, self.table.info, transform, split=split, root=root, skip_missing=skip_missing
        )

    def read_mask_file(self, path: Path) -> np.ndarray:
        table = self.table
        return read_mask(path, table.colors, table.ignore_color, table.info.ignore_index)


def folder_samples(root: Path, split: str) -> list[Sample]:
    """The image/mask pairs of ``split`` under ``root``."""
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FcnlabError(f"folder dataset {root} has no {folder.name}/ folder; create it.")
    stems: list[str] | None = None
    if (image_dir / split).is_dir():
        image_dir, mask_dir = image_dir / split, mask_dir / split
        if not mask_dir.is_dir():
            raise FcnlabError(f"{root}/images/{split}/ exists but {mask_dir} does not; add it.")
    elif (root / f"{split}.txt").is_file():
        stems = read_list_file(root / f"{split}.txt")
    elif split != "all":
        raise FcnlabError(
            f"folder dataset {root} has no split '{split}': add images/{split}/ and "
            f"masks/{split}/, or a {split}.txt listing stems, or use split 'all'."
        )
    images, masks = index_by_stem(image_dir), index_by_stem(mask_dir)
    if stems is None:
        stems = list(images)
    return [
        Sample(
            stem,
            images.get(stem, image_dir / f"{stem}.jpg"),
            masks.get(stem, mask_dir / f"{stem}.png"),
        )
        for stem in stems
    ]


def load_class_table(root: Path) -> ClassTable:
    """Read and check ``classes.yaml`` (or ``.yml``/``.json``) in ``root``."""
    path = next((root / n for n in CLASS_FILES if (root / n).is_file()), None)
    if path is None:
        raise FcnlabError(
            f"folder dataset {root} needs a classes.yaml (or classes.json) with "
            "'names: [...]' listing the classes in index order; create it."
        )
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise FcnlabError(f"{path} cannot be parsed ({error}); fix its syntax.") from None
    return parse_class_table(data, path, default_name=root.name)


def parse_class_table(data: Any, path: Path, default_name: str = "folder") -> ClassTable:
    """Check the contents of a class file and build its :class:`ClassTable`."""
    if not isinstance(data, dict):
        raise FcnlabError(f"{path} must be a mapping with a 'names' key; rewrite it.")
    unknown = sorted(set(data) - set(CLASS_KEYS))
    if unknown:
        raise FcnlabError(
            f"{path} has unknown key(s) {', '.join(map(str, unknown))}; "
            f"valid keys are {', '.join(CLASS_KEYS)}."
        )
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise FcnlabError(f"{path} needs 'names' as a non-empty list of class-name strings.")
    if len(set(names)) != len(names):
        raise FcnlabError(f"{path} lists a class name twice in 'names'; make names unique.")
    colors = None
    if data.get("colors") is not None:
        colors = tuple(_color(c, path, "colors") for c in _as_list(data["colors"], path))
        if len(colors) != len(names):
            raise FcnlabError(
                f"{path} has {len(names)} names but {len(colors)} colors; give one colour "
                "per class."
            )
        if len(set(colors)) != len(colors):
            raise FcnlabError(f"{path} gives two classes the same colour; make colors unique.")
    ignore_index = data.get("ignore_index", 255)
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise FcnlabError(f"{path} has ignore_index {ignore_index!r}; it must be an integer.")
    if 0 <= ignore_index < len(names):
        raise FcnlabError(
            f"{path} has ignore_index {ignore_index}, which is a class index; pick a value "
            f"outside 0..{len(names) - 1} (255 is usual)."
        )
    ignore_color = data.get("ignore_color")
    if ignore_color is not None:
        ignore_color = _color(ignore_color, path, "ignore_color")
        if colors is not None and ignore_color in colors:
            raise FcnlabError(
                f"{path} uses ignore_color {ignore_color} for a class too; pick another colour."
            )
    palette = colors if colors is not None else voc_colormap(len(names))
    info = LabelSpace(str(data.get("name", default_name)), tuple(names), palette, ignore_index)
    return ClassTable(info, colors, ignore_color)


def _as_list(value: Any, path: Path) -> list:
    if not isinstance(value, list):
        raise FcnlabError(f"{path} needs 'colors' as a list of [r, g, b] triples.")
    return value


def _color(value: Any, path: Path, key: str) -> Color:
    ok = isinstance(value, (list, tuple)) and len(value) == 3
    if not ok or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise FcnlabError(f"{path} has {key} entry {value!r}; write colours as [r, g, b], 0-255.")
    return (int(value[0]), int(value[1]), int(value[2]))
