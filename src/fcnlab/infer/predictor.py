"""The predictor: a model file in, masks at each image's own size out.

``Predictor.load(model_file)`` accepts an fcnlab checkpoint (``.pt``), an exported ONNX file
(``.onnx``) or an exported TorchScript file (``.ts``); all three go through the same
preprocessing (the card's normalisation and working scale), TTA, tiling and arg-max.

    predictor = Predictor.load("runs/camvid/best.pt", tta=parse_tta("flip"))
    result = predictor.predict(read_image("street.jpg"))
    result.mask          # H x W class indices
    result.fractions()   # {"sky": 0.21, ...}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fcnlab.card import METADATA_KEY, ModelCard
from fcnlab.errors import FcnlabError
from fcnlab.export.runners import OnnxRunner
from fcnlab.infer.runtime import Runner, TorchRunner, make_runner, resolve_backend
from fcnlab.infer.tiling import TTA, probabilities
from fcnlab.masks import predicted_classes
from fcnlab.preprocess import calibration_batch, to_batch


@dataclass
class Prediction:
    mask: np.ndarray  # H x W class indices (uint8 when they fit)
    probs: np.ndarray | None  # C x H x W float32, when asked for
    classes: tuple[str, ...]

    def fractions(self) -> dict[str, float]:
        counts = np.bincount(self.mask.ravel(), minlength=len(self.classes))
        total = max(1, self.mask.size)
        return {name: float(counts[i]) / total for i, name in enumerate(self.classes)}


class Predictor:
    """Segments images with one runner and one card; safe to share across threads."""

    def __init__(
        self,
        runner: Runner,
        card: ModelCard,
        tta: TTA = TTA(),
        tile: tuple[int, int] | None = None,
        overlap: float = 0.25,
        source: str = "model",
    ) -> None:
        self.runner, self.card, self.tta = runner, card, tta
        self.tile, self.overlap, self.source = tile, overlap, source

    @property
    def backend(self) -> str:
        return getattr(self.runner, "backend", "custom")

    @classmethod
    def load(
        cls,
        model_file: str | Path,
        backend: str = "auto",
        device: str = "cpu",
        tta: TTA = TTA(),
        tile: tuple[int, int] | None = None,
        overlap: float = 0.25,
        calibration: Sequence[Image.Image] = (),
        report: Callable[[str], None] | None = None,
    ) -> Predictor:
        """Load a checkpoint, ``.onnx`` or ``.ts`` file; ``backend`` picks how a checkpoint
        runs (``auto``: measured on first use, ``report`` receiving the choice as one line)."""
        model_file = Path(model_file)
        if not model_file.is_file():
            raise FcnlabError(f"model file {model_file} does not exist; check the path.")
        suffix = model_file.suffix.lower()
        as_exported = {
            ".onnx": ("auto", "best", "rule", "onnx"),
            ".ts": ("auto", "best", "rule", "eager"),
        }
        if suffix in as_exported and backend not in as_exported[suffix]:
            raise FcnlabError(
                f"--backend {backend} applies to checkpoints; {model_file.name} is an exported "
                "model and runs as exported (export the checkpoint again to change precision)."
            )
        if suffix == ".onnx":
            runner = OnnxRunner(model_file)
            from fcnlab.export.onnx import read_card

            card = read_card(runner.session, str(model_file))
        elif suffix == ".ts":
            runner, card = _load_torchscript(model_file, device)
        else:
            from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint

            checkpoint = load_checkpoint(model_file)
            card = ModelCard.from_checkpoint(checkpoint)
            model = model_from_checkpoint(checkpoint)
            batches = [calibration_batch(card, image) for image in calibration]
            int8 = _companion(model_file, backend, report)
            runner = make_runner(model, backend, device, batches, report=report, int8_file=int8)
        return cls(runner, card, tta, tile, overlap, source=str(model_file))

    def probabilities(
        self, images: Sequence[Image.Image], tile: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """``tile`` (from a memory plan) overrides the predictor's own tile size."""
        x = to_batch(images, self.card)
        tile = tile or self.tile
        return probabilities(self.runner, x, self.card.scale, self.tta, tile, self.overlap)

    def predict_batch(
        self,
        images: Sequence[Image.Image],
        keep_probs: bool = False,
        tile: tuple[int, int] | None = None,
    ) -> list[Prediction]:
        probs = self.probabilities(images, tile)
        masks = predicted_classes(probs).numpy()
        dtype = np.uint8 if self.card.num_classes <= 256 else np.int32
        return [
            Prediction(
                masks[i].astype(dtype),
                probs[i].numpy().astype(np.float32) if keep_probs else None,
                self.card.classes,
            )
            for i in range(len(images))
        ]

    def predict(
        self, image: Image.Image, keep_probs: bool = False, tile: tuple[int, int] | None = None
    ) -> Prediction:
        return self.predict_batch([image], keep_probs, tile)[0]


def _companion(model_file: Path, backend: str, report: Callable[[str], None] | None) -> Path | None:
    """The checkpoint's int8 companion file, when ``auto`` may measure it."""
    from fcnlab.infer.companion import find_companion

    if resolve_backend(backend) != "auto":
        return None
    companion = find_companion(model_file)
    if companion is None:
        return None
    if report is not None:
        report(f"{companion.describe()}: measured with the other backends")
    return companion.file


def _load_torchscript(model_file: Path, device: str) -> tuple[TorchRunner, ModelCard]:
    from fcnlab.export.onnx import load_torchscript

    extra = {f"{METADATA_KEY}.json": ""}
    try:
        module = load_torchscript(model_file, device, extra)
    except RuntimeError as error:
        raise FcnlabError(f"{model_file} is not a TorchScript file ({error}).") from None
    text = extra[f"{METADATA_KEY}.json"]
    if not text:
        raise FcnlabError(f"{model_file} has no fcnlab description; export it with fcnlab.")
    return TorchRunner(module, "eager", device), ModelCard.from_json(text, str(model_file))
