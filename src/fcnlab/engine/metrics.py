"""Segmentation metrics from one confusion matrix, as defined in the FCN paper.

Contract:

- :class:`ConfusionMatrix` accumulates an int64 ``num_classes x num_classes`` matrix (rows =
  ground truth, columns = prediction) on the device of the tensors it is fed, with one
  ``torch.bincount`` per batch. Pixels labelled ``ignore_index`` are left out; any other label
  outside ``[0, num_classes)`` raises :class:`~fcnlab.errors.FcnlabError`.
  :meth:`ConfusionMatrix.all_reduce` sums it over a ``torch.distributed`` process group.
- :func:`compute_metrics` turns a matrix into a plain JSON-serialisable dict.
- :func:`format_metrics` renders that dict as a ``rich`` table for the console.

With ``n_ij`` the pixels of class i predicted as j, ``t_i = sum_j n_ij`` (label pixels) and
``p_j = sum_i n_ij`` (predicted pixels):

- pixel accuracy ``sum_i n_ii / sum_i t_i``;
- class accuracy ``n_ii / t_i``, defined only for classes with label pixels (``t_i > 0``);
  a class that is predicted but never labelled has accuracy ``None``, not 0: there are no
  pixels of it to get right. Mean accuracy averages over classes with ``t_i > 0``;
- IoU ``n_ii / (t_i + p_i - n_ii)``, defined for classes present in the labels *or* the
  predictions; a class predicted but never labelled therefore has IoU 0 and counts in the
  mean IoU (it is pure false positives). A class absent from both is reported with
  ``present=False``, ``iou=None``, ``acc=None`` and is left out of every mean;
- frequency-weighted IoU ``sum_i t_i IoU_i / sum_i t_i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from rich.table import Table

from fcnlab.errors import FcnlabError


def check_label_maps(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` as long tensors on ``target``'s device, and the labelled pixels
    (a class index that is not the ignore index), or one sentence for what does not fit: other
    shapes, float or bool maps, a label or prediction outside ``[0, num_classes)``.

    The ignore index may lie inside ``[0, num_classes)``; ignored pixels are never checked.
    """
    if pred.shape != target.shape:
        raise FcnlabError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}; pass logits.argmax(1), not the logits."
        )
    for name, t in (("pred", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise FcnlabError(f"{name} must hold integer class indices, got {t.dtype}.")
    target = target.long()
    pred = pred.to(device=target.device, dtype=torch.long)
    keep = (target >= 0) & (target < num_classes)
    bad_target = ~keep
    if ignore_index is not None:
        ignored = target == ignore_index
        bad_target &= ~ignored
        keep &= ~ignored
    bad_pred = keep & ((pred < 0) | (pred >= num_classes))
    # One host sync for both checks; boolean indexing would add another per batch.
    any_bad_target, any_bad_pred = torch.stack((bad_target.any(), bad_pred.any())).tolist()
    for name, bad, values in (("target", any_bad_target, target), ("pred", any_bad_pred, pred)):
        if bad:
            found = sorted(values[bad_target if name == "target" else bad_pred].unique()[:5])
            ignore = f" and the ignore index {ignore_index}" if name == "target" else ""
            raise FcnlabError(
                f"{name} holds values {[int(v) for v in found]} outside [0, {num_classes})"
                f"{ignore}; check num_classes and ignore_index against the dataset's labels."
            )
    return pred, target, keep


class ConfusionMatrix:
    """Running confusion matrix; feed it ``logits.argmax(1)`` and the label batch.

    With ``device=None`` the matrix follows the data: it moves to the device of the first
    batch, so that GPU evaluation never copies counts back to the host per batch.
    """

    def __init__(
        self, num_classes: int, ignore_index: int | None, device: torch.device | str | None = None
    ) -> None:
        if num_classes < 1:
            raise FcnlabError(f"num_classes must be at least 1, got {num_classes}.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._follow_data = device is None
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Zero the counts (e.g. before each validation pass)."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and ground-truth class indices of the same shape."""
        if self._follow_data and self.matrix.device != target.device:
            self.matrix = self.matrix.to(target.device)
        n = self.num_classes
        pred, target, keep = check_label_maps(pred, target, n, self.ignore_index)
        pred, target, keep = pred.reshape(-1), target.reshape(-1), keep.reshape(-1)
        # Excluded pixels go to one extra bin that is dropped, so no masking is needed.
        index = torch.where(keep, n * target + pred, n * n)
        counts = torch.bincount(index, minlength=n * n + 1)[: n * n]
        self.matrix += counts.view(n, n).to(self.matrix.device)

    def all_reduce(self) -> None:
        """Sum the matrix over all processes; a no-op unless torch.distributed is initialised.

        With the NCCL backend the matrix must be on the GPU (it is, if the batches were).
        """
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)

    def compute(self, class_names: Sequence[str] | None = None) -> dict:
        """The metrics of the counts so far; see :func:`compute_metrics`."""
        return compute_metrics(self.matrix, class_names)


def compute_metrics(
    matrix: torch.Tensor | np.ndarray, class_names: Sequence[str] | None = None
) -> dict:
    """Pixel accuracy, mean accuracy, mean IoU, frequency-weighted IoU and per-class results.

    Returns ``{"pixel_acc", "mean_acc", "miou", "fwiou", "per_class", "confusion"}`` with
    plain Python floats, ints, lists and ``None`` only (see the module docstring for how
    absent classes are treated).
    """
    m = _as_int_matrix(matrix)
    n = m.shape[0]
    if class_names is not None and len(class_names) != n:
        raise FcnlabError(f"Got {len(class_names)} class names for a {n}-class matrix.")
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    total = int(m.sum())
    if total == 0:
        raise FcnlabError(
            "The confusion matrix is empty: no labelled pixel was evaluated; "
            "check ignore_index and that the evaluation set is not empty."
        )
    diag = np.diag(m).astype(np.float64)
    label_px = m.sum(axis=1).astype(np.float64)
    pred_px = m.sum(axis=0).astype(np.float64)
    labelled = label_px > 0
    present = labelled | (pred_px > 0)
    # The where= masks keep 0/0 out of the arithmetic; those entries are never read.
    acc = np.divide(diag, label_px, out=np.zeros(n), where=labelled)
    iou = np.divide(diag, label_px + pred_px - diag, out=np.zeros(n), where=present)
    per_class = [
        {
            "index": i,
            "name": names[i],
            "iou": float(iou[i]) if present[i] else None,
            "acc": float(acc[i]) if labelled[i] else None,
            "present": bool(present[i]),
            "pixels": int(label_px[i]),
        }
        for i in range(n)
    ]
    return {
        "pixel_acc": float(diag.sum() / total),
        "mean_acc": float(acc[labelled].mean()),
        "miou": float(iou[present].mean()),
        "fwiou": float((label_px * iou).sum() / total),
        "per_class": per_class,
        "confusion": m.tolist(),
    }


def _as_int_matrix(matrix: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise FcnlabError(f"A confusion matrix must be square and non-empty, got {m.shape}.")
    if not np.issubdtype(m.dtype, np.integer) or (m < 0).any():
        raise FcnlabError("A confusion matrix must hold non-negative integer pixel counts.")
    return m.astype(np.int64)


def format_percent(value: float | None) -> str:
    """``0.6789 -> "67.89"``; ``None`` (undefined) -> an em dash."""
    return "—" if value is None else f"{100 * value:.2f}"


def format_summary(metrics: dict) -> str:
    """The four summary numbers on one line, for logs."""
    return (
        f"pixel acc {format_percent(metrics['pixel_acc'])}%  "
        f"mean acc {format_percent(metrics['mean_acc'])}%  "
        f"mIoU {format_percent(metrics['miou'])}%  "
        f"fwIoU {format_percent(metrics['fwiou'])}%"
    )


def format_metrics(metrics: dict) -> Table:
    """Per-class IoU and accuracy, then the four summary numbers; print it with ``rich``.

    The summary rows put mIoU and fwIoU in the IoU column and mean and pixel accuracy in the
    accuracy column, so every number sits under the heading that names its kind.
    """
    table = Table(title="Evaluation")
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("IoU %", justify="right")
    table.add_column("acc %", justify="right")
    table.add_column("pixels", justify="right")
    for c in metrics["per_class"]:
        if not c["present"]:
            table.add_row(str(c["index"]), c["name"], "absent", "absent", "0", style="dim")
            continue
        iou, acc = format_percent(c["iou"]), format_percent(c["acc"])
        table.add_row(str(c["index"]), c["name"], iou, acc, f"{c['pixels']:,}")
    table.add_section()
    pct = format_percent
    table.add_row(
        "", "mIoU / mean acc", pct(metrics["miou"]), pct(metrics["mean_acc"]), "", style="bold"
    )
    table.add_row("", "fwIoU / pixel acc", pct(metrics["fwiou"]), pct(metrics["pixel_acc"]), "")
    return table
