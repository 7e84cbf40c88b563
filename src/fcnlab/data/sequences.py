"""Whole video sequences kept out of training, so a recipe is judged on streets it never saw.

CamVid's frames come from a few drives, and its val split is more frames of a drive the
train split also holds: val then rewards fitting that drive. A *sequence* is a file-name
prefix (CamVid: ``0001TP``, ``0006R0``, ``0016E5``, the part before the first ``_``).
:func:`hold_out` splits a dataset into the samples of no named sequence (for training) and
the samples of the named ones (evaluated on their own); :func:`select_sequences` keeps only
the named ones (``fcnlab eval --sequences``); :func:`balance_sequences` repeats the frames of
the smaller sequences so that one long drive does not make most of an epoch
(``data.balance_sequences``). All three are :class:`Selection` views: the same
files and checks as the dataset they come from, their own list of names and their own
transform, so nothing of a held-out sequence is in the training view's file list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from fcnlab.data.datasets.base import SegmentationDataset, Transform
from fcnlab.errors import FcnlabError


class Selection(SegmentationDataset):
    """The samples ``indices`` of ``dataset``, with a transform of their own."""

    def __init__(
        self,
        dataset: SegmentationDataset,
        indices: Sequence[int],
        transform: Transform | None = None,
    ) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.info = dataset.info
        self.names = [dataset.names[i] for i in self.indices]
        self.transform = transform
        self.missing = list(dataset.missing)
        self.root = getattr(dataset, "root", None)
        self.split = getattr(dataset, "split", None)
        samples = getattr(dataset, "samples", None)
        self.samples = [samples[i] for i in self.indices] if samples is not None else None

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        return self.dataset.load(self.indices[index])

    def load_mask(self, index: int) -> np.ndarray:
        return self.dataset.load_mask(self.indices[index])

    def __repr__(self) -> str:
        return f"Selection({self.dataset!r}, size={len(self)})"


def sequence_of(name: str) -> str:
    """A sample's sequence as CamVid names it: the file name up to its first ``_``."""
    return name.split("_", 1)[0]


def in_sequences(name: str, sequences: Sequence[str]) -> bool:
    """Whether sample ``name`` belongs to one of ``sequences`` (file-name prefixes)."""
    return any(name.startswith(prefix) for prefix in sequences)


def hold_out(
    dataset: SegmentationDataset, sequences: Sequence[str], option: str = "data.holdout_sequences"
) -> tuple[SegmentationDataset, Selection | None]:
    """(the samples of no named sequence, the samples of the named ones or None if none)."""
    if not sequences:
        return dataset, None
    _check_prefixes(dataset, sequences, option)
    held, kept = [], []
    for i, name in enumerate(dataset.names):
        (held if in_sequences(name, sequences) else kept).append(i)
    if not kept:
        raise FcnlabError(
            f"{option} holds out every image of split '{_split(dataset)}' ({len(held)}); leave "
            "at least one sequence to train on."
        )
    return Selection(dataset, kept, dataset.transform), Selection(dataset, held)


def select_sequences(
    dataset: SegmentationDataset, sequences: Sequence[str], option: str = "--sequences"
) -> SegmentationDataset:
    """Only the samples of ``sequences`` (all of ``dataset`` when none are named)."""
    if not sequences:
        return dataset
    _check_prefixes(dataset, sequences, option)
    held = [i for i, name in enumerate(dataset.names) if in_sequences(name, sequences)]
    return Selection(dataset, held, dataset.transform)


def balance_sequences(dataset: SegmentationDataset) -> Selection:
    """``dataset`` with each sequence's frames repeated ``round(largest / its count)`` times.

    Every frame of a sequence is repeated equally, so each sequence gets about as many samples
    per epoch as the largest one (CamVid train without 0006R0: 204 frames of 0016E5, 62 of
    0001TP x 3 = 186), in a fixed order the sampler then shuffles; nothing is added that the
    dataset does not hold. With a single sequence it is the dataset as it is.
    """
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(dataset.names):
        groups.setdefault(sequence_of(name), []).append(i)
    largest = max((len(members) for members in groups.values()), default=0)
    indices = [
        i
        for members in groups.values()
        for _ in range(max(1, round(largest / len(members))))
        for i in members
    ]
    return Selection(dataset, indices, dataset.transform)


def sequences_in(dataset: SegmentationDataset) -> list[str]:
    """The sequences (``sequence_of`` each name) present in ``dataset``, sorted."""
    return sorted({sequence_of(name) for name in dataset.names})


def _check_prefixes(dataset: SegmentationDataset, sequences: Sequence[str], option: str) -> None:
    for prefix in sequences:
        if not prefix:
            raise FcnlabError(f"{option} holds an empty sequence name; remove it.")
        if not any(name.startswith(prefix) for name in dataset.names):
            found = sequences_in(dataset)
            shown = ", ".join(found[:12]) + (", ..." if len(found) > 12 else "")
            raise FcnlabError(
                f"{option} names sequence {prefix!r}, but no image of split "
                f"'{_split(dataset)}' starts with it; its sequences (file-name prefixes "
                f"before the first '_') are {shown}."
            )


def _split(dataset: SegmentationDataset) -> str:
    return str(getattr(dataset, "split", None) or "?")
