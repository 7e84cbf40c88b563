"""The run report's figures, each saved as one PNG.

Contract: every ``plot_*`` function takes data already read from a run folder and an output
path, writes a PNG there and returns the path, or returns ``None`` and writes nothing when
there is no data to draw (a run without validation has no mIoU curve).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas
directly, never through ``pyplot``: no global figure registry to leak memory in a long
training run, no GUI backend chosen by accident on a headless machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the records that carry a number under ``key``."""
    points = [
        (r["step"], r[key])
        for r in history
        if isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), (int, float))
    ]
    return [p[0] for p in points], [p[1] for p in points]


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches itself to fig
    fig.savefig(path, dpi=DPI)
    return path


def plot_losses(history: list[dict], path: Path) -> Path | None:
    """Training loss (and validation loss where logged) against the optimiser step."""
    curves = {k: _series(history, k) for k in ("train_loss", "val_loss")}
    curves = {k: v for k, v in curves.items() if v[0]}
    if not curves:
        return None
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    for key, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=key)
    ax.set(xlabel="step", ylabel="loss", title="Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_val_metrics(history: list[dict], path: Path) -> Path | None:
    """Validation mIoU (with pixel and mean accuracy, and the held-out sequences' mIoU, where
    logged) against the step, in %."""
    keys = {
        "val_miou": "mIoU",
        "val_pixel_acc": "pixel acc",
        "val_mean_acc": "mean acc",
        "holdout_miou": "mIoU, held-out sequences",
    }
    miou_steps, _ = _series(history, "val_miou")
    if not miou_steps:
        return None
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    for key, label in keys.items():
        steps, values = _series(history, key)
        if steps:
            style = "-" if key.endswith("miou") else "--"
            ax.plot(steps, [100 * v for v in values], style, marker="o", label=label)
    ax.set(xlabel="step", ylabel="%", title="Validation", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_class_iou(metrics: dict, path: Path) -> Path | None:
    """Horizontal bars of per-class IoU; absent classes are named but have no bar."""
    classes = metrics.get("per_class") or []
    if not classes:
        return None
    names = [c["name"] for c in classes]
    ious = [100 * c["iou"] if c["iou"] is not None else 0.0 for c in classes]
    fig = Figure(figsize=(6, 1 + 0.3 * len(classes)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(classes))
    ax.barh(y, ious, color="tab:blue")
    ax.set_yticks(y, names)
    ax.invert_yaxis()  # class 0 on top, as in the tables
    for i, c in enumerate(classes):
        text = "absent" if c["iou"] is None else f"{100 * c['iou']:.1f}"
        ax.text(ious[i] + 1, i, text, va="center", fontsize=8)
    ax.axvline(100 * metrics["miou"], color="tab:red", ls="--", label="mIoU", zorder=0)
    ax.set(xlim=(0, 110), xlabel="IoU %", title="Per-class IoU")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_confusion(metrics: dict, path: Path) -> Path | None:
    """The confusion matrix normalised per ground-truth row, as a heat map in %."""
    matrix = np.asarray(metrics.get("confusion") or [], dtype=np.float64)
    if matrix.ndim != 2 or matrix.size == 0:
        return None
    n = matrix.shape[0]
    names = [c["name"] for c in metrics["per_class"]]
    rows = matrix.sum(axis=1, keepdims=True)
    # Rows of classes without label pixels stay 0 instead of 0/0.
    norm = 100 * np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    side = max(4.0, 1.5 + 0.4 * n)
    fig = Figure(figsize=(side + 1, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of the row's label pixels", shrink=0.8)
    ax.set_xticks(range(n), names, rotation=90)
    ax.set_yticks(range(n), names)
    ax.set(xlabel="prediction", ylabel="ground truth", title="Confusion (row-normalised)")
    if n <= 25:  # beyond that the numbers are unreadable; the colours still show the pattern
        for i, j in zip(*np.nonzero(norm >= 0.5), strict=True):
            colour = "white" if norm[i, j] > 60 else "black"
            ax.text(j, i, f"{norm[i, j]:.0f}", ha="center", va="center", fontsize=7, color=colour)
    return _save(fig, path)
