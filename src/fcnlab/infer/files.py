"""``fcnlab predict``: segment files, folders and globs into a folder of outputs.

For an input ``a/b/x.jpg`` the outputs are, in ``DIR``:

- ``x.png``: the mask, an indexed PNG (pixel value = class index, palette = class colours;
  a 16-bit grayscale PNG when there are more than 256 classes);
- ``x.overlay.jpg`` (``--overlay``): the class colours blended over the image;
- ``x.probs.npy`` (``--probs``): ``C x H x W`` float16 class probabilities;
- ``x.json`` (``--json``): per-class pixel fractions, the image size and the model.

Every image's size is read from its header first and planned against a memory limit
(:mod:`fcnlab.infer.memory`): run whole, tiled to fit, or refused. A file that cannot be read,
does not fit or runs out of memory is reported by name and skipped; the others are still
written.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fcnlab.card import ModelCard
from fcnlab.data.decode import IMAGE_SUFFIXES, read_image
from fcnlab.errors import FcnlabError
from fcnlab.infer.memory import (
    MIB,
    Plan,
    available_memory,
    image_size,
    is_out_of_memory,
    plan_image,
)
from fcnlab.infer.predictor import Prediction, Predictor
from fcnlab.masks import overlay


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


Planned = tuple[Path, Plan]


def _plans(
    paths: Iterable[Path], predictor: Predictor, limit: int, want: Outputs, summary: PredictSummary
) -> Iterator[Planned]:
    """Each readable image's memory plan, from its header only; refusals go to ``summary``."""
    for path in paths:
        try:
            header = image_size(path, str(path))
            yield path, plan_image(predictor, header, limit, str(path), want.probs, want.overlay)
        except FcnlabError as error:
            summary.failed.append((path, str(error)))


def _batches(items: Iterator[Planned], size: int, limit: int) -> Iterator[list[Planned]]:
    """Consecutive whole-image plans of one size, at most ``size`` and ``limit`` bytes at a
    time; a tiled image runs alone."""
    batch: list[Planned] = []
    for item in items:
        plan = item[1]
        if batch and not _joins(batch, plan, size, limit):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _joins(batch: list[Planned], plan: Plan, size: int, limit: int) -> bool:
    first = batch[0][1]
    return (
        len(batch) < size
        and plan.tile is None
        and first.tile is None
        and (first.header.width, first.header.height) == (plan.header.width, plan.header.height)
        and sum(p.estimate for _, p in batch) + plan.estimate <= limit
    )


def _run_batch(
    predictor: Predictor, batch: list[Planned], out: Path, want: Outputs, summary: PredictSummary
) -> None:
    """Decode, segment and write one batch; an image that cannot be read or runs out of
    memory is recorded in ``summary`` and the rest go on."""
    images: list[tuple[Path, Image.Image]] = []
    for path, _ in batch:
        try:
            images.append((path, read_image(path)))
        except FcnlabError as error:
            summary.failed.append((path, str(error)))
    if not images:
        return
    tile = batch[0][1].tile
    try:
        results = predictor.predict_batch([im for _, im in images], want.probs, tile)
        for (path, image), result in zip(images, results, strict=True):
            summary.written += write_outputs(path, image, result, predictor.card, out, want)
    except (MemoryError, RuntimeError) as error:
        reason = _failure(error, sum(p.estimate for _, p in batch))
        summary.failed += [(path, reason) for path, _ in images]


def _failure(error: BaseException, estimate: int) -> str:
    if is_out_of_memory(error):
        return (
            f"ran out of memory (about {estimate / MIB:.0f} MiB was estimated); free memory "
            "or lower --max-memory-mb so that it is tiled."
        )
    return f"failed while segmenting ({type(error).__name__}: {str(error)[:200]})."


def default_memory_limit() -> int:
    """Bytes one batch may use by default: half of what is free now (MemAvailable, the
    cgroup's limit, ``ulimit -v``; see :func:`~fcnlab.infer.memory.available_memory`)."""
    return available_memory() // 2


def predict_files(
    predictor: Predictor,
    paths: Sequence[Path],
    out: Path,
    want: Outputs = Outputs(),
    batch_size: int = 1,
    progress: Callable[[int], None] | None = None,
    max_bytes: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> PredictSummary:
    """Segment ``paths`` into ``out`` within ``max_bytes`` per batch (default:
    :func:`default_memory_limit`); ``progress(n)`` is called after each batch of n,
    ``notify(line)`` for each image that is tiled to fit."""
    if batch_size < 1:
        raise FcnlabError(f"--batch must be at least 1, not {batch_size}.")
    limit = max_bytes or default_memory_limit()
    summary = PredictSummary()
    prepare_out(out)
    for batch in _batches(_plans(paths, predictor, limit, want, summary), batch_size, limit):
        if notify and batch[0][1].tile is not None:
            notify(batch[0][1].describe())
        _run_batch(predictor, batch, out, want, summary)
        if progress:
            progress(len(batch))
    return summary
