"""``fcnlab predict``: segment files, folders and globs into a folder of outputs.

For an input ``a/b/x.jpg`` the outputs are, in ``DIR``:

- ``x.png``: the mask, an indexed PNG (pixel value = class index, palette = class colours;
  a 16-bit grayscale PNG when there are more than 256 classes);
- ``x.overlay.jpg`` (``--overlay``): the class colours blended over the image;
- ``x.probs.npy`` (``--probs``): ``C x H x W`` float16 class probabilities;
- ``x.json`` (``--json``): per-class pixel fractions, the image size and the model.

A file that cannot be read is reported by name and skipped; the others are still written.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fcnlab.data.decode import IMAGE_SUFFIXES, read_image
from fcnlab.engine.visualize import overlay
from fcnlab.errors import FcnlabError
from fcnlab.infer.card import ModelCard
from fcnlab.infer.predictor import Prediction, Predictor


@dataclass(frozen=True)
class Outputs:
    overlay: bool = False
    probs: bool = False
    json: bool = False


@dataclass
class PredictSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def gather_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly, found in folders (recursively) or matched by globs."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=True))
            if not matches:
                raise FcnlabError(f"no file matches {item}; check the pattern.")
            found += [p for p in matches if p.is_file()]
        else:
            raise FcnlabError(f"input {item} does not exist; check the path.")
    if not found:
        raise FcnlabError(f"no images found in {', '.join(map(str, inputs))}.")
    _check_unique_stems(found)
    return found


def _check_unique_stems(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem] != path:
            raise FcnlabError(
                f"{seen[path.stem]} and {path} would both be written as {path.stem}.png; "
                "predict them into separate --out folders."
            )
        seen[path.stem] = path


def prepare_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".fcnlab-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise FcnlabError(
            f"cannot write to {out} ({error.strerror}); choose another --out."
        ) from None
    return out


def mask_image(mask: np.ndarray, palette: Sequence[Sequence[int]]) -> Image.Image:
    """An indexed PNG image: values are class indices, the palette shows class colours."""
    if len(palette) > 256:
        return Image.fromarray(mask.astype(np.uint16))
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    flat = [int(v) for colour in palette for v in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def write_outputs(
    path: Path,
    image: Image.Image,
    result: Prediction,
    card: ModelCard,
    out: Path,
    want: Outputs,
) -> list[Path]:
    stem = out / path.stem
    written = [stem.with_suffix(".png")]
    mask_image(result.mask, card.palette).save(written[0])
    if want.overlay:
        blended = overlay(np.asarray(image), result.mask, card.palette, card.ignore_index)
        written.append(out / f"{path.stem}.overlay.jpg")
        Image.fromarray(blended).save(written[-1], quality=90)
    if want.probs:
        written.append(out / f"{path.stem}.probs.npy")
        np.save(written[-1], result.probs.astype(np.float16))
    if want.json:
        written.append(out / f"{path.stem}.json")
        info = {
            "image": str(path),
            "width": image.width,
            "height": image.height,
            "model": card.name,
            "fractions": result.fractions(),
        }
        written[-1].write_text(json.dumps(info, indent=2))
    return written


def _read_all(paths: Iterable[Path], summary: PredictSummary) -> Iterator[tuple[Path, Image.Image]]:
    for path in paths:
        try:
            yield path, read_image(path)
        except FcnlabError as error:
            summary.failed.append((path, str(error)))


def _batches(items: Iterator[tuple[Path, Image.Image]], size: int):
    """Consecutive images of one size, at most ``size`` at a time."""
    batch: list[tuple[Path, Image.Image]] = []
    for item in items:
        if batch and (len(batch) == size or batch[0][1].size != item[1].size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def predict_files(
    predictor: Predictor,
    paths: Sequence[Path],
    out: Path,
    want: Outputs = Outputs(),
    batch_size: int = 1,
    progress=None,
) -> PredictSummary:
    """Segment ``paths`` into ``out``; ``progress(n)`` is called after each batch of n."""
    summary = PredictSummary()
    prepare_out(out)
    for batch in _batches(_read_all(paths, summary), max(1, batch_size)):
        images = [image for _, image in batch]
        results = predictor.predict_batch(images, keep_probs=want.probs)
        for (path, image), result in zip(batch, results, strict=True):
            summary.written += write_outputs(path, image, result, predictor.card, out, want)
        if progress:
            progress(len(batch))
    return summary
