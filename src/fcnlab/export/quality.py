"""What an int8 export costs in accuracy, measured on the checkpoint's own data.

A run knows its dataset: :func:`dataset_images` gives calibration images from its training
split and :func:`int8_quality` the val mIoU of the fp32 model and of the int8 file, so the
int8 model beside a checkpoint (``best.int8.onnx``) records its mIoU delta. The images never
leave the machine; only the two numbers go into the file's metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fcnlab.card import ModelCard
from fcnlab.data import build_dataset, eval_transforms
from fcnlab.data.sequences import hold_out
from fcnlab.engine.evaluate import full_size_logits
from fcnlab.engine.metrics import ConfusionMatrix
from fcnlab.errors import FcnlabError
from fcnlab.masks import predicted_classes
from fcnlab.serialization import file_sha256

#: The ONNX metadata key of the int8 record (the card itself is under ``fcnlab``).
INT8_KEY = "fcnlab.int8"
#: The most val images the delta is measured on (the whole split when smaller).
MAX_VAL_IMAGES = 200


@dataclass(frozen=True)
class Int8Quality:
    miou_fp32: float
    miou_int8: float
    val_images: int
    calibration_images: int
    split: str
    source_sha256: str  # of the checkpoint file the int8 model was made from

    @property
    def delta(self) -> float:
        return self.miou_int8 - self.miou_fp32

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"int8 val mIoU {100 * self.miou_int8:.2f} vs fp32 {100 * self.miou_fp32:.2f} "
            f"({100 * self.delta:+.2f} points, {self.val_images} {self.split} images)"
        )


def _dataset(checkpoint: dict[str, Any], split_key: str, transform=None):
    data = (checkpoint.get("config") or {}).get("data") or {}
    if "name" not in data:
        raise FcnlabError("the checkpoint does not say which dataset it was trained on.")
    split = data.get(split_key) or ("train" if split_key == "train_split" else "val")
    return build_dataset(
        data["name"], data.get("root"), split, transform, **data.get("options", {})
    )


def dataset_images(checkpoint: dict[str, Any], count: int) -> list[Image.Image]:
    """Up to ``count`` images of the checkpoint's training split, spread over it (never one of
    its held-out sequences)."""
    held_out = ((checkpoint.get("config") or {}).get("data") or {}).get("holdout_sequences")
    dataset, _ = hold_out(_dataset(checkpoint, "train_split"), held_out or [])
    step = max(1, len(dataset) // count)
    return [dataset.load(i)[0] for i in range(0, len(dataset), step)][:count]


def int8_quality(
    checkpoint: dict[str, Any],
    checkpoint_file: Path,
    model: torch.nn.Module,
    int8_runner,
    calibration_images: int,
) -> Int8Quality:
    """Val mIoU of ``model`` (fp32, eager) and of ``int8_runner`` at the checkpoint's scale."""
    card = ModelCard.from_checkpoint(checkpoint)
    dataset = _dataset(checkpoint, "val_split", eval_transforms(card.mean, card.std))
    count = min(len(dataset), MAX_VAL_IMAGES)
    fp32 = ConfusionMatrix(card.num_classes, card.ignore_index)
    int8 = ConfusionMatrix(card.num_classes, card.ignore_index)
    model = model.eval()
    for index in range(count):
        image, mask = dataset[index]
        x = image[None].float()
        with torch.inference_mode():
            fp32.update(predicted_classes(full_size_logits(model, x, card.scale)), mask[None])
        int8.update(predicted_classes(full_size_logits(int8_runner, x, card.scale)), mask[None])
    names = list(card.classes)
    return Int8Quality(
        miou_fp32=float(fp32.compute(names)["miou"]),
        miou_int8=float(int8.compute(names)["miou"]),
        val_images=count,
        calibration_images=calibration_images,
        split=getattr(dataset, "split", "val"),
        source_sha256=file_sha256(checkpoint_file),
    )
