"""Pascal VOC 2012 segmentation, plus the SBD-augmented ``train_aug`` split.

Layout: ``root/VOCdevkit/VOC2012`` (or ``root`` itself being ``VOC2012``) with
``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (palette PNGs: pixel = class index,
255 = boundary, ignored) and ``ImageSets/Segmentation/{train,val,trainval}.txt``.

``train_aug`` (10,582 images in the usual setup) is SBD train + SBD val + VOC train, minus
VOC val. Its labels come from a pre-converted ``VOC2012/SegmentationClassAug`` PNG folder
when there is one (with an optional ``train_aug.txt`` list), else from the SBD release
(``benchmark_RELEASE/dataset`` with ``cls/*.mat``, ``train.txt``, ``val.txt``; reading .mat
needs scipy), preferring VOC's own PNG where an image has one.

``download=True`` fetches the archives with torchvision's download code, URLs and MD5
checksums (``torchvision.datasets.VOCSegmentation`` and ``SBDataset``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets.sbd import SBDataset
from torchvision.datasets.utils import download_and_extract_archive
from torchvision.datasets.voc import DATASET_YEAR_DICT

from fcnlab.data.classes import VOC_INFO
from fcnlab.data.datasets.base import FileDataset, Sample, Transform
from fcnlab.data.decode import index_by_stem, read_list_file, read_mask
from fcnlab.errors import FcnlabError

VOC_SPLITS = ("train", "val", "trainval", "train_aug")
VOC_ARCHIVE = DATASET_YEAR_DICT["2012"]
SBD_FOLDERS = ("benchmark_RELEASE/dataset", "SBD/dataset", "SBD", "sbd")


class VOCDataset(FileDataset):
    """Pascal VOC 2012 segmentation: 21 classes, 255 ignored."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        download: bool = False,
        sbd_root: str | Path | None = None,
        skip_missing: bool = False,
    ) -> None:
        root = Path(root)
        if split not in VOC_SPLITS:
            raise FcnlabError(f"VOC has no split '{split}'; choose one of {', '.join(VOC_SPLITS)}.")
        if download and find_voc_folder(root) is None:
            download_archive(VOC_ARCHIVE["url"], VOC_ARCHIVE["filename"], VOC_ARCHIVE["md5"], root)
        voc = require_voc_folder(root)
        if split == "train_aug":
            samples = aug_samples(root, voc, sbd_root, download)
        else:
            require_dir(voc / "SegmentationClass", voc)
            samples = voc_samples(voc, read_split(voc, split))
        if any(s.mask.suffix == ".mat" for s in samples):
            scipy_loadmat()  # fail now, not at the first .mat label
        # An SBD release given as sbd_root may live outside root; its files are trusted too.
        extra = [Path(sbd_root)] if split == "train_aug" and sbd_root is not None else []
        super().__init__(
            samples,
            VOC_INFO,
            transform,
            split=split,
            root=root,
            skip_missing=skip_missing,
            extra_roots=extra,
        )

    def read_mask_file(self, path: Path) -> np.ndarray:
        return read_sbd_mat(path) if path.suffix == ".mat" else read_mask(path)


def find_voc_folder(root: Path) -> Path | None:
    """``root/VOCdevkit/VOC2012`` or ``root`` itself, whichever holds ``JPEGImages``."""
    for folder in (root / "VOCdevkit" / "VOC2012", root):
        if (folder / "JPEGImages").is_dir():
            return folder
    return None


def require_voc_folder(root: Path) -> Path:
    voc = find_voc_folder(root)
    if voc is None:
        raise FcnlabError(
            f"no Pascal VOC 2012 under {root}: expected {root}/VOCdevkit/VOC2012/JPEGImages "
            f"(or {root}/JPEGImages); extract {VOC_ARCHIVE['filename']} into {root} "
            "or pass download=True."
        )
    return voc


def require_dir(folder: Path, voc: Path) -> None:
    if not folder.is_dir():
        raise FcnlabError(
            f"the VOC folder {voc} is incomplete: {folder.name}/ is missing; re-extract "
            f"{VOC_ARCHIVE['filename']} there."
        )


def read_split(voc: Path, split: str) -> list[str]:
    list_file = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise FcnlabError(
            f"the VOC folder {voc} is incomplete: ImageSets/Segmentation/{split}.txt is "
            f"missing; re-extract {VOC_ARCHIVE['filename']} there."
        )
    return read_list_file(list_file)


def voc_samples(voc: Path, stems: list[str]) -> list[Sample]:
    images, labels = voc / "JPEGImages", voc / "SegmentationClass"
    return [Sample(s, images / f"{s}.jpg", labels / f"{s}.png") for s in stems]


def aug_samples(root: Path, voc: Path, sbd_root: str | Path | None, download: bool) -> list[Sample]:
    """Samples of ``train_aug``, from SegmentationClassAug PNGs or the SBD release."""
    val = set(read_split(voc, "val"))
    aug_dir = voc / "SegmentationClassAug"
    if aug_dir.is_dir():
        lists = [voc / "ImageSets" / "SegmentationAug" / "train_aug.txt"]
        lists += [voc / "ImageSets" / "Segmentation" / "train_aug.txt", root / "train_aug.txt"]
        list_file = next((f for f in lists if f.is_file()), None)
        if list_file is not None:
            stems = read_list_file(list_file)
        else:
            stems = sorted(set(index_by_stem(aug_dir, (".png",))) - val)
        images = voc / "JPEGImages"
        return [Sample(s, images / f"{s}.jpg", aug_dir / f"{s}.png") for s in stems]

    sbd = find_sbd_folder(root, sbd_root)
    if sbd is None and download:
        download_archive(SBDataset.url, SBDataset.filename, SBDataset.md5, root)
        sbd = find_sbd_folder(root, sbd_root)
    if sbd is None:
        raise FcnlabError(
            f"split 'train_aug' needs {voc}/SegmentationClassAug PNGs or the SBD release "
            f"(cls/*.mat, train.txt, val.txt) at {root}/benchmark_RELEASE/dataset; "
            "pass sbd_root=... or download=True."
        )
    stems = set(read_list_file(sbd / "train.txt")) | set(read_list_file(sbd / "val.txt"))
    stems = sorted((stems | set(read_split(voc, "train"))) - val)
    return [_aug_sample(voc, sbd, stem) for stem in stems]


def _aug_sample(voc: Path, sbd: Path, stem: str) -> Sample:
    # VOC's own label is finer (it marks boundaries as 255), so it wins where it exists.
    image = voc / "JPEGImages" / f"{stem}.jpg"
    if not image.is_file() and (sbd / "img" / f"{stem}.jpg").is_file():
        image = sbd / "img" / f"{stem}.jpg"
    label = voc / "SegmentationClass" / f"{stem}.png"
    return Sample(stem, image, label if label.is_file() else sbd / "cls" / f"{stem}.mat")


def find_sbd_folder(root: Path, sbd_root: str | Path | None) -> Path | None:
    """The SBD ``dataset`` folder: ``sbd_root`` if given, else a usual place under ``root``."""
    candidates = [Path(sbd_root)] if sbd_root is not None else [root / f for f in SBD_FOLDERS]
    for folder in candidates:
        if (folder / "cls").is_dir() and (folder / "train.txt").is_file():
            if not (folder / "val.txt").is_file():
                raise FcnlabError(f"the SBD folder {folder} has no val.txt; re-extract it.")
            return folder
    if sbd_root is not None:
        raise FcnlabError(
            f"sbd_root {sbd_root} is not an SBD dataset folder: it needs cls/ and train.txt "
            "(point it at benchmark_RELEASE/dataset)."
        )
    return None


def download_archive(url: str, filename: str, md5: str, root: Path) -> None:
    """Download, verify (MD5) and extract an archive into ``root``, or explain how to by hand."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        download_and_extract_archive(url, str(root), filename=filename, md5=md5)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad MD5 a RuntimeError
        raise FcnlabError(
            f"could not download {filename} from {url} ({error}); if this machine is offline, "
            f"fetch it elsewhere and extract it into {root}."
        ) from None


def scipy_loadmat():
    try:
        from scipy.io import loadmat
    except ImportError:
        raise FcnlabError(
            "SBD labels are MATLAB .mat files and reading them needs scipy, which is not "
            "installed; run `pip install scipy` or use SegmentationClassAug PNGs instead."
        ) from None
    return loadmat


def read_sbd_mat(path: Path) -> np.ndarray:
    """The class-index mask of an SBD ``cls/*.mat`` file."""
    loadmat = scipy_loadmat()
    try:
        mask = loadmat(str(path))["GTcls"][0]["Segmentation"][0]
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise FcnlabError(f"SBD label {path} cannot be read ({error}); replace it.") from None
    return np.asarray(mask, dtype=np.uint8)
