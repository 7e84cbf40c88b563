"""SegNet's boundary F1 score (BF, Csurka et al. 2013): how well predicted contours fit.

Contract:

- Only *valid* pixels take part: a pixel whose label is ``ignore_index`` is valid in neither
  map, and the prediction is masked with the labels' ignore region.
- A boundary pixel of class c is a valid pixel of class c with a valid 4-neighbour (up, down,
  left or right) of another class. Ignored pixels and the image border therefore make no
  boundary, and no boundary pixel lies on an ignored pixel.
- The tolerance is a fraction of the image diagonal (default 0.75%, as in SegNet): a pixel
  is *within tolerance* of a set when some pixel of the set lies at Euclidean distance at
  most ``d = tolerance * sqrt(H^2 + W^2)`` (a disk, not a square).
- For each image and each class c present in that image's labels: precision = the fraction
  of predicted boundary pixels of c within tolerance of a true one, recall = the fraction of
  true boundary pixels of c within tolerance of a predicted one, F1 = 2PR / (P + R), and 0
  when P + R = 0. A class that is labelled but not predicted has no predicted boundary and
  scores 0. When neither map has a boundary of c (c fills every valid pixel it touches), F1
  is 1 if the two masks of c agree on the valid pixels and 0 otherwise. A class predicted
  but not labelled in an image is not scored for that image (Csurka's definition averages
  over the classes of the ground truth).
- :class:`BoundaryF1` averages each class's F1 over the images whose labels hold it (the
  per-class BF, ``None`` for a class never labelled) and reports ``bf``, the mean over the
  classes that were labelled somewhere. It also reports ``bf_image``, SegNet's dataset
  average: per image the mean F1 over its labelled classes, averaged over images.

Dilation by the disk is exact and separable by rows: the disk is the union over row offsets
``dy`` of horizontal segments of half-width ``floor(sqrt(d^2 - dy^2))``, so it takes about
``3 d`` shifted ORs per map and no convolution. The boundary maps of all classes are packed
as one bit per class in an int64 per pixel, so one dilation serves 63 classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
from rich.table import Table

from fcnlab.engine.metrics import check_label_maps, format_percent
from fcnlab.errors import FcnlabError

#: SegNet's tolerance: 0.75% of the image diagonal.
DEFAULT_TOLERANCE = 0.0075
#: Pixels of the images scored at once, to bound memory (a few int64 maps of this size).
_CHUNK_PIXELS = 1 << 23
#: Classes per int64 word of a bit-packed boundary map (the sign bit is left unused).
_BITS = 63


def check_tolerance(tolerance: float, name: str = "the boundary tolerance") -> float:
    """``tolerance`` as a float, or :class:`FcnlabError` unless ``0 < tolerance < 1``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise FcnlabError(
            f"{name} must be a number, a fraction of the image diagonal, got {tolerance!r}."
        )
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise FcnlabError(
            f"{name} is a fraction of the image diagonal and must lie strictly between 0 "
            f"and 1 (SegNet uses 0.0075), got {tolerance}."
        )
    return float(tolerance)


def tolerance_pixels(tolerance: float, height: int, width: int) -> float:
    """The tolerance distance in pixels for an ``height x width`` image."""
    return check_tolerance(tolerance) * math.hypot(height, width)


def boundaries(labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Boolean ``... x H x W`` map of the valid pixels with a valid 4-neighbour of another label."""
    edge = torch.zeros_like(valid)
    for dim in (-1, -2):
        size = labels.shape[dim]
        if size < 2:
            continue
        la, lb = labels.narrow(dim, 0, size - 1), labels.narrow(dim, 1, size - 1)
        va, vb = valid.narrow(dim, 0, size - 1), valid.narrow(dim, 1, size - 1)
        differ = va & vb & (la != lb)
        edge.narrow(dim, 0, size - 1).logical_or_(differ)
        edge.narrow(dim, 1, size - 1).logical_or_(differ)
    return edge


def dilate(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """The pixels within Euclidean distance ``radius`` of ``mask`` (``... x H x W``).

    ``mask`` is boolean, or an integer bit set per pixel (each bit dilated on its own: a
    pixel gets the OR of the bits within the disk), which dilates up to 63 classes at once.
    """
    reach_sq = math.floor(radius * radius + 1e-9)  # integer offsets with dx^2 + dy^2 <= d^2
    reach = math.isqrt(reach_sq)
    if reach == 0:
        return mask.clone()
    height, width = mask.shape[-2:]
    out = torch.zeros_like(mask)
    row = mask.clone()  # mask dilated horizontally by ``half`` pixels each side
    half = 0
    # |dy| from the largest down: the horizontal half-width only grows, so ``row`` is reused.
    for dy in range(reach, -1, -1):
        need = math.isqrt(reach_sq - dy * dy)
        while half < need:
            half += 1
            if half < width:
                row[..., half:].bitwise_or_(mask[..., : width - half])
                row[..., : width - half].bitwise_or_(mask[..., half:])
        if dy >= height:
            continue
        if dy == 0:
            out.bitwise_or_(row)
        else:
            out[..., dy:, :].bitwise_or_(row[..., : height - dy, :])
            out[..., : height - dy, :].bitwise_or_(row[..., dy:, :])
    return out


class BoundaryF1:
    """Running boundary F1 (BF) per class; feed it ``logits.argmax(1)`` and the label batch.

    Like :class:`~fcnlab.engine.metrics.ConfusionMatrix` it keeps its sums on the device of
    the data, checks the labels, and :meth:`all_reduce` sums it over a process group.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None,
        tolerance: float = DEFAULT_TOLERANCE,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 1:
            raise FcnlabError(f"num_classes must be at least 1, got {num_classes}.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.tolerance = check_tolerance(tolerance)
        self._follow_data = device is None
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self.reset()

    def reset(self) -> None:
        """Zero the sums (e.g. before each validation pass)."""
        n = self.num_classes
        self.f1_sum = torch.zeros(n, dtype=torch.float64, device=self._device)
        self.images_with = torch.zeros(n, dtype=torch.int64, device=self._device)
        # [sum over images of the image's mean F1, number of images with a labelled class]
        self.image_sum = torch.zeros(2, dtype=torch.float64, device=self._device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add ``N x H x W`` (or one ``H x W``) predicted and ground-truth class indices."""
        pred, target = self._checked(pred, target)
        if self._follow_data and self._device != target.device:
            self._move(target.device)
        f1, labelled = image_class_f1(
            pred, target, self.num_classes, self.ignore_index, self.tolerance
        )
        f1 = f1.to(self._device)
        labelled = labelled.to(self._device)
        self.f1_sum += f1.sum(0)
        self.images_with += labelled.sum(0)
        count = labelled.sum(1)
        has = count > 0
        means = f1.sum(1) / count.clamp(min=1)
        self.image_sum += torch.stack((means[has].sum(), has.sum().double()))

    def _move(self, device: torch.device) -> None:
        self._device = device
        self.f1_sum = self.f1_sum.to(device)
        self.images_with = self.images_with.to(device)
        self.image_sum = self.image_sum.to(device)

    def _checked(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if pred.shape != target.shape or target.dim() not in (2, 3):
            check_label_maps(pred, target, self.num_classes, self.ignore_index)
            raise FcnlabError(
                f"pred and target must be N x H x W label maps, got shape {tuple(target.shape)}."
            )
        if target.dim() == 2:
            pred, target = pred[None], target[None]
        pred, target, _ = check_label_maps(pred, target, self.num_classes, self.ignore_index)
        return pred, target

    def all_reduce(self) -> None:
        """Sum over all processes; a no-op unless torch.distributed is initialised."""
        if dist.is_available() and dist.is_initialized():
            for t in (self.f1_sum, self.images_with, self.image_sum):
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def compute(self) -> dict:
        """``{"bf", "per_class", "bf_image", "images", "tolerance"}`` as plain Python values.

        ``per_class[c]`` is the mean F1 of class c over the images whose labels hold it, or
        ``None`` when no image did; ``bf`` is the mean of the non-``None`` entries.
        """
        counts = self.images_with.cpu()
        sums = self.f1_sum.cpu()
        if int(counts.sum()) == 0:
            raise FcnlabError(
                "no labelled pixel was evaluated for the boundary F1 score; check "
                "ignore_index and that the evaluation set is not empty."
            )
        per_class = [
            float(s / c) if c > 0 else None
            for s, c in zip(sums.tolist(), counts.tolist(), strict=True)
        ]
        scored = [v for v in per_class if v is not None]
        image_sum, images = self.image_sum.cpu().tolist()
        return {
            "bf": sum(scored) / len(scored),
            "per_class": per_class,
            "bf_image": image_sum / images,
            "images": int(images),
            "tolerance": self.tolerance,
        }


def _ignored(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    if ignore_index is None:
        return torch.zeros_like(target, dtype=torch.bool)
    return target == ignore_index


def _valid(target: torch.Tensor, ignore_index: int | None, num_classes: int) -> torch.Tensor:
    """Labelled pixels: a class index in ``[0, num_classes)`` that is not the ignore index."""
    return (target >= 0) & (target < num_classes) & ~_ignored(target, ignore_index)


def image_class_f1(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and class: boundary F1 (``N x C`` float64) and whether it is labelled there.

    ``pred`` and ``target`` are ``N x H x W`` class indices; target values outside
    ``[0, num_classes)`` other than ``ignore_index`` are treated as ignored here (use
    :class:`BoundaryF1` for checked input). F1 is 0 where the class is not labelled.
    """
    n_img, height, width = target.shape
    per_chunk = max(1, _CHUNK_PIXELS // max(1, height * width))
    if n_img > per_chunk:  # bound the memory of the int64 bit maps
        parts = [
            image_class_f1(
                pred[i : i + per_chunk],
                target[i : i + per_chunk],
                num_classes,
                ignore_index,
                tolerance,
            )
            for i in range(0, n_img, per_chunk)
        ]
        return torch.cat([f for f, _ in parts]), torch.cat([lab for _, lab in parts])
    c = num_classes
    radius = tolerance_pixels(tolerance, height, width)
    target = target.long()
    pred = pred.to(device=target.device, dtype=torch.long)
    valid = _valid(target, ignore_index, c)
    pred_valid = valid & (pred >= 0) & (pred < c)
    gt_edge = boundaries(target, valid)
    pred_edge = boundaries(pred, pred_valid)

    offset = torch.arange(n_img, device=target.device)[:, None, None] * c
    bins = n_img * c

    def count(labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Pixels per (image, class of ``labels``) among ``keep``, as an N x C float64."""
        flat = torch.where(keep, labels + offset, bins).reshape(-1)
        return torch.bincount(flat, minlength=bins + 1)[:bins].view(n_img, c).double()

    gt_px = count(target, valid)
    labelled = gt_px > 0
    # The no-boundary case compares masks: pixels of a class in one map but not the other.
    mismatch = gt_px + count(pred, pred_valid) - 2 * count(target, valid & (pred == target))
    n_gt, n_pred = count(target, gt_edge), count(pred, pred_edge)
    hit_gt = torch.zeros_like(n_gt)  # true boundary pixels near a predicted one
    hit_pred = torch.zeros_like(n_pred)  # predicted boundary pixels near a true one
    # Boundary maps as one bit per class (63 classes a word), all dilated at once.
    for base in range(0, c, _BITS):
        gt_in = gt_edge & (target >= base) & (target < base + _BITS)
        pred_in = pred_edge & (pred >= base) & (pred < base + _BITS)
        gt_shift = (target - base).clamp(0, _BITS - 1)
        pred_shift = (pred - base).clamp(0, _BITS - 1)
        one = torch.ones((), dtype=torch.int64, device=target.device)
        near_gt = dilate(torch.where(gt_in, one << gt_shift, 0), radius)
        near_pred = dilate(torch.where(pred_in, one << pred_shift, 0), radius)
        hit_pred += count(pred, pred_in & ((near_gt >> pred_shift) & 1).bool())
        hit_gt += count(target, gt_in & ((near_pred >> gt_shift) & 1).bool())
    precision = hit_pred / n_pred.clamp(min=1)
    recall = hit_gt / n_gt.clamp(min=1)
    total = precision + recall
    f1 = torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-300), 0.0)
    # Neither map has a boundary of the class: score the masks' agreement instead.
    no_edges = (n_gt == 0) & (n_pred == 0)
    f1 = torch.where(no_edges, (mismatch == 0).double(), f1)
    return torch.where(labelled, f1, 0.0), labelled


def per_class_dict(values: Sequence[float | None], class_names: Sequence[str]) -> dict:
    """``{class name: BF or None}`` from :meth:`BoundaryF1.compute`'s ``per_class``."""
    if len(values) != len(class_names):
        raise FcnlabError(f"Got {len(class_names)} class names for {len(values)} BF values.")
    return dict(zip(class_names, values, strict=True))


def format_boundary(metrics: dict) -> Table:
    """Per-class BF and the mean of an evaluation's ``per_class_bf`` and ``bf``; print it."""
    tolerance = metrics.get("bf_tolerance")
    title = "Boundary F1 (BF)"
    if tolerance is not None:
        title += f", tolerance {100 * tolerance:g}% of the diagonal"
    table = Table(title=title)
    table.add_column("class")
    table.add_column("BF %", justify="right")
    for name, value in (metrics.get("per_class_bf") or {}).items():
        if value is None:
            table.add_row(name, "absent", style="dim")
        else:
            table.add_row(name, format_percent(value))
    table.add_section()
    table.add_row("mean BF", format_percent(metrics.get("bf")), style="bold")
    if metrics.get("bf_image") is not None:
        table.add_row("mean BF over images", format_percent(metrics["bf_image"]))
    return table
