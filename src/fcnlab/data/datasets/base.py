"""The dataset contract every fcnlab dataset follows, and its file-backed implementation.

A :class:`SegmentationDataset` has ``info`` (a :class:`LabelSpace`), ``names`` (one stem per
sample), ``load(i) -> (PIL RGB image, HxW mask array)`` returning the raw, checked pair, and
``dataset[i] -> (image, mask)`` after ``transform``: the pair goes in as
``(tv_tensors.Image uint8 3xHxW, tv_tensors.Mask HxW)`` and the mask always comes out as an
int64 ``HxW`` tensor. Without a transform the image stays a uint8 ``3xHxW`` tensor.

:class:`FileDataset` holds a list of :class:`Sample` file pairs. A sample whose image or mask
is missing, is not a regular file (a folder, a fifo, a broken link or a symlink loop) or
resolves (symlinks followed) outside the dataset's root raises at construction, naming the
entry; with ``skip_missing=True`` such samples are left out, never opened, and described in
``missing`` (which :func:`fcnlab.data.check_dataset` reports as problems).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from fcnlab.data.decode import check_labels, check_sizes, read_image, read_mask
from fcnlab.errors import FcnlabError
from fcnlab.labels import LabelSpace

Transform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[Any, Any]]


@dataclass(frozen=True)
class Sample:
    """One image file and its label file."""

    name: str
    image: Path
    mask: Path


def to_tv_tensors(image: Image.Image, mask: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Wrap a raw pair as uint8 ``3xHxW`` image and ``HxW`` mask tensors (the mask is shared)."""
    # numpy does the HWC -> CHW copy: torch's strided copy is slow with contended threads.
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    return tv_tensors.Image(torch.from_numpy(pixels)), tv_tensors.Mask(torch.from_numpy(mask))


def as_label_tensor(mask: Any) -> torch.Tensor:
    """Make whatever a transform returned for the mask an int64 ``HxW`` tensor."""
    mask = torch.as_tensor(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    return mask.as_subclass(torch.Tensor).to(torch.int64)


class SegmentationDataset(Dataset):
    """Base class: subclasses set ``info``, ``names`` and implement :meth:`load`."""

    info: LabelSpace
    names: list[str]
    transform: Transform | None
    missing: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        """The raw checked pair: an RGB image and an HxW mask of class indices."""
        raise NotImplementedError

    def load_mask(self, index: int) -> np.ndarray:
        """The checked mask alone (subclasses skip decoding the image where they can)."""
        return self.load(index)[1]

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        image, mask = self.load(index)
        if mask.dtype == np.uint8 and not 0 <= self.info.ignore_index <= 255:
            mask = mask.astype(np.int64)  # so crop padding can hold the ignore value
        image, mask = to_tv_tensors(image, mask)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, as_label_tensor(mask)


class FileDataset(SegmentationDataset):
    """A dataset of image/mask file pairs, checked on load."""

    def __init__(
        self,
        samples: Sequence[Sample],
        info: LabelSpace,
        transform: Transform | None = None,
        *,
        split: str,
        root: Path,
        skip_missing: bool = False,
        extra_roots: Sequence[Path] = (),
    ) -> None:
        if not samples:
            raise FcnlabError(
                f"split '{split}' of {info.name} under {root} has no samples; check the "
                "split name and that its list file or folder is not empty."
            )
        self.info = info
        self.transform = transform
        self.split = split
        self.root = root
        roots = [resolved_root(folder) for folder in (root, *extra_roots)]
        problems = [sample_problem(sample, roots) for sample in samples]
        self.missing = [problem for problem in problems if problem]
        if self.missing and not skip_missing:
            raise FcnlabError(
                f"{len(self.missing)} of {len(samples)} samples of split '{split}' under {root} "
                f"have missing or unusable files (first: {self.missing[0]}); fix the files or "
                "the list, or pass skip_missing=True to leave them out."
            )
        self.samples = [
            sample for sample, problem in zip(samples, problems, strict=True) if not problem
        ]
        self.names = [s.name for s in self.samples]

    def read_mask_file(self, path: Path) -> np.ndarray:
        """Decode one label file; subclasses override for colour tables or .mat files."""
        return read_mask(path)

    def load_mask(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        mask = self.read_mask_file(sample.mask)
        check_labels(mask, self.info.num_classes, self.info.ignore_index, sample.mask)
        return mask

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        sample = self.samples[index]
        image = read_image(sample.image)
        mask = self.load_mask(index)
        check_sizes(image, mask, sample.image, sample.mask)
        return image, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root}, split={self.split!r}, size={len(self)})"


def resolved_root(root: Path) -> Path:
    """``root`` with every symlink followed, so samples can be compared against it."""
    try:
        return root.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop (Python < 3.13)
        raise FcnlabError(f"dataset root {root} cannot be resolved ({error}); fix it.") from None


def sample_problem(sample: Sample, roots: Sequence[Path]) -> str:
    """Why ``sample`` cannot be used (one line naming it), or ``""`` when it can."""
    for what, path in (("image", sample.image), ("mask", sample.mask)):
        problem = file_problem(path, roots)
        if problem:
            return f"{sample.name}: {what} {path} {problem}"
    return ""


def file_problem(path: Path, roots: Sequence[Path]) -> str:
    """Why ``path`` is not a readable regular file inside one of ``roots``, or ``""``."""
    try:
        target = path.resolve(strict=False)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return "is a symlink loop"
    if not any(target.is_relative_to(root) for root in roots):
        return f"resolves to {target}, outside the dataset root {roots[0]}"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "is a broken link" if path.is_symlink() else "not found"
    except OSError as error:  # ELOOP where resolve() does not raise (3.13+), EACCES, ...
        return "is a symlink loop" if error.errno == errno.ELOOP else f"cannot be read ({error})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a fifo, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return ""
