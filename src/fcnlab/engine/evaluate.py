"""Evaluation: full-size predictions, one confusion matrix, the FCN paper's metrics.

A model trained at a reduced resolution (``scale`` < 1) sees each image resized by ``scale``
and its logits are upsampled back to the full image, so labels are always compared at their
own size. Under torchrun each rank evaluates its share and the matrices are summed.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from fcnlab.data import SegmentationDataset, build_dataset, eval_transforms
from fcnlab.data.sequences import select_sequences
from fcnlab.engine import distributed
from fcnlab.engine.boundary import DEFAULT_TOLERANCE, BoundaryF1, check_tolerance, per_class_dict
from fcnlab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from fcnlab.engine.distributed import Context
from fcnlab.engine.guards import batches
from fcnlab.engine.metrics import ConfusionMatrix
from fcnlab.errors import FcnlabError
from fcnlab.hardware import resolve_precision
from fcnlab.masks import predicted_classes


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (``auto`` resolved for ``device``)."""
    if precision == "auto":
        precision = resolve_precision("auto", device).precision
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def full_size_logits(model: nn.Module, images: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Logits at the images' own size, predicting at ``scale`` times that size."""
    size = images.shape[-2:]
    if scale != 1.0:
        scaled = [max(1, round(s * scale)) for s in size]
        images = F.interpolate(
            images, size=scaled, mode="bilinear", align_corners=False, antialias=scale < 1
        )
    logits = model(images)
    if logits.shape[-2:] != size:
        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    return logits


def flip_averaged(model: nn.Module, images: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Flip test-time augmentation: the mean class probabilities of the images and of their
    mirror images (predicted mirrored, then mirrored back), at the images' own size."""
    plain = full_size_logits(model, images, scale).float().softmax(1)
    mirrored = full_size_logits(model, images.flip(-1), scale).float().softmax(1).flip(-1)
    return (plain + mirrored) / 2


def evaluation_loader(
    dataset: SegmentationDataset, ctx: Context, batch_size: int, workers: int
) -> DataLoader:
    # Shard without padding (DistributedSampler repeats samples, which would bias metrics).
    shard = Subset(dataset, range(ctx.rank, len(dataset), ctx.world_size))
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=ctx.device.type == "cuda",
    )


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: SegmentationDataset,
    ctx: Context,
    *,
    scale: float = 1.0,
    batch_size: int = 1,
    workers: int = 0,
    precision: str = "fp32",
    loss_fn=None,
    boundary: bool = False,
    boundary_tolerance: float = DEFAULT_TOLERANCE,
    flip: bool = False,
) -> dict[str, Any]:
    """Metrics over ``dataset`` (plus ``loss`` when ``loss_fn`` is given).

    ``flip`` scores :func:`flip_averaged` predictions (flip TTA; no loss then).

    With ``boundary`` the same full-size predictions are also scored with SegNet's boundary
    F1 (:mod:`fcnlab.engine.boundary`), adding ``bf``, ``bf_image``, ``per_class_bf``
    (class name -> BF or ``None`` for a class never labelled) and ``bf_tolerance``.
    """
    if flip and loss_fn is not None:
        raise ValueError("evaluate: a loss is computed from logits, not flip-averaged scores")
    was_training = model.training
    model.eval()
    info = dataset.info
    predict = flip_averaged if flip else full_size_logits
    matrix = ConfusionMatrix(info.num_classes, info.ignore_index, ctx.device)
    bf = BoundaryF1(info.num_classes, info.ignore_index, boundary_tolerance) if boundary else None
    loss_sum = torch.zeros(2, dtype=torch.float64, device=ctx.device)
    for images, masks in batches(evaluation_loader(dataset, ctx, batch_size, workers)):
        images, masks = images.to(ctx.device), masks.to(ctx.device)
        with autocast(ctx.device, precision):
            logits = predict(model, images, scale)
        pred = predicted_classes(logits)
        matrix.update(pred, masks)
        if bf is not None:
            bf.update(pred, masks)
        if loss_fn is not None:
            loss_sum += torch.stack(
                [
                    loss_fn(logits.float(), masks).double() * len(images),
                    torch.tensor(len(images), device=ctx.device),
                ]
            )
    matrix.all_reduce()
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(loss_sum)
    metrics = matrix.compute(list(info.classes))
    if bf is not None:
        bf.all_reduce()
        scores = bf.compute()
        metrics["bf"] = scores["bf"]
        metrics["bf_image"] = scores["bf_image"]
        metrics["per_class_bf"] = per_class_dict(scores["per_class"], list(info.classes))
        metrics["bf_tolerance"] = scores["tolerance"]
    if loss_fn is not None:
        metrics["loss"] = float(loss_sum[0] / loss_sum[1].clamp(min=1))
    model.train(was_training)
    return metrics


@torch.inference_mode()
def sample_predictions(
    model: nn.Module,
    dataset: SegmentationDataset,
    count: int,
    device: torch.device,
    scale: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(images, predictions, labels) for the first ``count`` samples, for the report."""
    was_training = model.training
    model.eval()
    images, preds, labels = [], [], []
    for index in range(min(count, len(dataset))):
        tensor, mask = dataset[index]
        logits = full_size_logits(model, tensor[None].to(device), scale)
        images.append(np.asarray(dataset.load(index)[0].convert("RGB")))
        preds.append(predicted_classes(logits)[0].cpu().numpy())
        labels.append(mask.numpy())
    model.train(was_training)
    return images, preds, labels


def evaluate_checkpoint(
    checkpoint_path: Path,
    *,
    data: str | None = None,
    root: Path | None = None,
    split: str | None = None,
    scale: float | None = None,
    precision: str = "auto",
    json_path: Path | None = None,
    boundary: bool = False,
    boundary_tolerance: float = DEFAULT_TOLERANCE,
    sequences: list[str] | None = None,
    flip: bool = False,
) -> tuple[dict[str, Any], Path | None]:
    """Evaluate a checkpoint on its own dataset's val split or another one; write JSON.

    ``boundary`` adds SegNet's boundary F1 score, ``flip`` scores flip TTA (see
    :func:`evaluate`); ``sequences`` keeps only the split's images of those sequences
    (file-name prefixes, e.g. the run's held-out ones: see :mod:`fcnlab.data.sequences`).
    """
    if boundary:
        check_tolerance(boundary_tolerance)
    checkpoint = load_checkpoint(checkpoint_path)
    cfg_data = checkpoint["config"].get("data") or {}
    if data is None and "name" not in cfg_data:
        raise FcnlabError(
            f"{checkpoint_path} does not say which dataset it was trained on; pass --data "
            "and --root."
        )
    if precision == "fp16" and not torch.cuda.is_available():
        raise FcnlabError("--precision fp16 needs a CUDA GPU; on a CPU use fp32 (or bf16).")
    same_dataset = data is None or data == cfg_data.get("name")
    name = data or cfg_data["name"]
    options = cfg_data.get("options", {}) if same_dataset else {}
    root = root if root is not None else (cfg_data.get("root") if same_dataset else None)
    split = split or cfg_data.get("val_split", "val")
    norm = checkpoint["normalization"]
    dataset = build_dataset(
        name, root, split, eval_transforms(norm["mean"], norm["std"]), **options
    )
    dataset = select_sequences(dataset, sequences or [])
    model = model_from_checkpoint(checkpoint, f"checkpoint {checkpoint_path}")
    if dataset.info.num_classes != model.num_classes:
        raise FcnlabError(
            f"{name} has {dataset.info.num_classes} classes but the checkpoint predicts "
            f"{model.num_classes}; evaluate it on the dataset it was trained for."
        )
    ctx = distributed.setup("auto")
    try:
        choice = resolve_precision(precision, ctx.device)
        precision = choice.precision
        if ctx.is_main:
            print(choice.line())
        model.to(ctx.device)
        metrics = evaluate(
            model,
            dataset,
            ctx,
            scale=scale or checkpoint.get("scale", 1.0),
            precision=precision,
            boundary=boundary,
            boundary_tolerance=boundary_tolerance,
            flip=flip,
        )
    finally:
        distributed.teardown()
    if not ctx.is_main:
        return metrics, None
    tag = "".join(f"_{s}" for s in sequences or []) + ("_flip" if flip else "")
    json_path = json_path or checkpoint_path.with_name(
        f"{checkpoint_path.stem}_eval_{split}{tag}.json"
    )
    payload = {
        **metrics,
        "checkpoint": str(checkpoint_path),
        "dataset": name,
        "split": split,
        "sequences": list(sequences or []) or None,
        "images": len(dataset),
        "tta": "flip" if flip else None,
        "precision": precision,
    }
    try:
        json_path.write_text(json.dumps(payload, indent=1))
    except OSError as err:
        raise FcnlabError(f"cannot write {json_path}: {err.strerror}.") from err
    return metrics, json_path
