"""Pixel-wise cross-entropy with an ignore label, optional class weights, label smoothing and
the auxiliary head's loss."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fcnlab.data import SegmentationDataset, class_pixel_counts, median_frequency_weights
from fcnlab.errors import FcnlabError


class SegmentationLoss:
    def __init__(
        self,
        ignore_index: int,
        weight: torch.Tensor | None,
        aux_weight: float,
        label_smoothing: float = 0.0,
    ):
        self.ignore_index, self.weight, self.aux_weight = ignore_index, weight, aux_weight
        self.label_smoothing = label_smoothing

    def __call__(self, out: torch.Tensor | dict[str, torch.Tensor], target: torch.Tensor):
        if isinstance(out, dict):
            return self._ce(out["out"], target) + self.aux_weight * self._ce(out["aux"], target)
        return self._ce(out, target)

    def total_weight(self, target: torch.Tensor) -> torch.Tensor:
        """What the mean-reduced loss divides by: the summed class weights of the valid
        (non-ignored) pixels, their count without weights. Gradient accumulation uses it to
        make k micro-batches equal one k-times batch."""
        valid = target != self.ignore_index
        if self.weight is None:
            return valid.sum().float()
        weight = self.weight.to(target.device)
        return weight[target.clamp(0, len(weight) - 1)][valid].sum().float()

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(logits.device)
        # Cross-entropy in fp32 even under autocast: bf16 log-softmax loses small classes.
        return F.cross_entropy(
            logits.float(),
            target,
            weight=weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


def class_weights(
    spec: str | list[float] | None, dataset: SegmentationDataset, cache_dir: Path
) -> torch.Tensor | None:
    """None, a given list, or median-frequency weights from the training labels (cached), or
    their square roots (``sqrt_median_frequency``: rare classes weigh more, less so)."""
    num_classes = dataset.info.num_classes
    if spec is None:
        return None
    if isinstance(spec, list):
        if len(spec) != num_classes:
            raise FcnlabError(
                f"train.class_weights lists {len(spec)} weights for {num_classes} classes."
            )
        return torch.tensor(spec, dtype=torch.float32)
    key = hashlib.sha1(
        repr((type(dataset).__name__, getattr(dataset, "root", None), dataset.names)).encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"median_frequency_{key}.json"
    if cache.is_file():
        weights = torch.tensor(json.loads(cache.read_text()), dtype=torch.float32)
    else:
        weights = torch.tensor(
            median_frequency_weights(class_pixel_counts(dataset)), dtype=torch.float32
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(np.asarray(weights).round(6).tolist()))
    return weights.sqrt() if spec == "sqrt_median_frequency" else weights
