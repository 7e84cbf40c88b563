"""The explain figures, rendered to PNG bytes (written by :mod:`fcnlab.explain.page`, or sent
by the web demo without touching the disk).

Built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never ``pyplot``
(no global state, no GUI backend). Each figure is a grid of panels of a fixed size in pixels
(:func:`grid_pixels`), so its PNG's size follows from the grid and the image's aspect ratio.
Coarse maps are drawn at their own resolution over the image (nearest-neighbour blocks), so
what a /16 feature can resolve is what the figure shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fcnlab.explain.result import BranchMap, Explanation
from fcnlab.masks import colorize, overlay

DPI = 100
#: A panel's height in inches; its width follows the image's aspect ratio within the limits.
#: Multiples of 1/4 inch at 100 dpi are whole pixels, so figure sizes are exact.
PANEL_HEIGHT, MIN_WIDTH, MAX_WIDTH = 2.5, 1.5, 5.0
#: Most classes shown as columns of the class-score figure.
MAX_CLASS_COLUMNS = 6


@dataclass(frozen=True)
class Rendered:
    """One figure: ``name.png`` on disk; ``title`` and ``caption`` on the page."""

    name: str
    title: str
    caption: str
    png: bytes


def panel_width(height: int, width: int) -> float:
    """A panel's width in inches for an image of ``height`` x ``width``."""
    aspect = width / max(1, height)
    return min(MAX_WIDTH, max(MIN_WIDTH, round(PANEL_HEIGHT * aspect * 4) / 4))


def grid_pixels(rows: int, cols: int, height: int, width: int, square: bool = False) -> tuple:
    """(width, height) in pixels of a figure of ``rows`` x ``cols`` panels."""
    panel = PANEL_HEIGHT if square else panel_width(height, width)
    return round(cols * panel * DPI), round(rows * PANEL_HEIGHT * DPI)


def _grid(rows: int, cols: int, image: np.ndarray, square: bool = False):
    panel = PANEL_HEIGHT if square else panel_width(*image.shape[:2])
    fig = Figure(figsize=(cols * panel, rows * PANEL_HEIGHT), dpi=DPI, layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _title(ax, text: str) -> None:
    ax.set_title(text, fontsize=7)


def _heat(ax, image: np.ndarray, values: np.ndarray, vmax: float | None = None, **style):
    """``values`` (any resolution) over a dimmed ``image``, as blocks of its own pixels."""
    h, w = image.shape[:2]
    ax.imshow(image, alpha=0.35)
    vmax = float(values.max()) if vmax is None and values.size else vmax
    shown = ax.imshow(
        values,
        extent=(0, w, h, 0),
        interpolation="nearest",
        alpha=0.75,
        vmin=style.pop("vmin", 0.0),
        vmax=vmax if vmax else 1.0,
        cmap=style.pop("cmap", "magma"),
    )
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    return shown


def _legend(fig: Figure, names: Sequence[str], colours: Sequence, title: str = "") -> None:
    """A legend under the panels; ``colours`` are 0-255 RGB."""
    handles = [
        Patch(facecolor=np.asarray(c, dtype=float) / 255, label=n)
        for n, c in zip(names, colours, strict=True)
    ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(handles)),
                   fontsize=7, title=title or None, title_fontsize=7, frameon=False)  # fmt: skip


def _present(result: Explanation, masks: Sequence[np.ndarray]) -> list[int]:
    """The classes that any of ``masks`` predicts, most frequent in the last mask first."""
    counts = np.bincount(masks[-1].ravel(), minlength=len(result.classes))
    seen = set()
    for mask in masks:
        seen.update(np.unique(mask).tolist())
    return sorted((c for c in seen if c < len(result.classes)), key=lambda c: -counts[c])


def _class_legend(fig: Figure, result: Explanation, masks: Sequence[np.ndarray]) -> None:
    classes = _present(result, masks)
    _legend(fig, [result.classes[c] for c in classes], [result.palette[c] for c in classes])


def prediction_figure(result: Explanation) -> Rendered:
    fig, axes = _grid(1, 2, result.image)
    axes[0, 0].imshow(result.image)
    _title(axes[0, 0], f"input\n({result.image.shape[1]} x {result.image.shape[0]})")
    axes[0, 1].imshow(overlay(result.image, result.mask, result.palette, None))
    _title(axes[0, 1], f"prediction of\n{result.model}")
    _class_legend(fig, result, [result.mask])
    return Rendered("prediction", "Prediction", "The image and the model's prediction.", _png(fig))


def _margin(scores: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 score per pixel: how decisively a score map votes."""
    if scores.shape[0] < 2:
        return np.abs(scores[0])
    top = np.partition(scores, scores.shape[0] - 2, axis=0)
    return top[-1] - top[-2]


def fcn_stage_figure(result: Explanation) -> Rendered:
    assert result.fcn is not None
    stages = result.fcn.stages
    fig, axes = _grid(len(stages), 4, result.image)
    image, palette = result.image, result.palette
    margins = [_margin(s.contribution) for s in stages]
    vmax = max((float(m.max()) for m in margins if m.size), default=1.0)
    previous = None
    for row, (stage, margin) in enumerate(zip(stages, margins, strict=True)):
        ax = axes[row]
        vote = stage.contribution.argmax(0)
        ax[0].imshow(colorize(vote, palette, None))
        _title(ax[0], f"{stage.label}:\nits own vote")
        shown = _heat(ax[1], image, margin, vmax)
        _title(ax[1], "how decisively\n(top-1 minus top-2 score)")
        ax[2].imshow(overlay(image, stage.fused_mask, palette, None))
        _title(ax[2], f"prediction fused\nup to {stage.name}")
        if previous is None:
            ax[3].imshow(image, alpha=0.35)
            _title(ax[3], "first prediction:\nnothing to change")
        else:
            changed = stage.fused_mask != previous
            ax[3].imshow(image, alpha=0.35)
            marks = np.ma.masked_where(~changed, changed.astype(np.float32))
            ax[3].imshow(marks, cmap="autumn", vmin=0, vmax=1, interpolation="nearest")
            _title(ax[3], f"changed by {stage.name}:\n{100 * changed.mean():.1f} % of pixels")
        previous = stage.fused_mask
    fig.colorbar(shown, ax=axes[:, 1], location="bottom", shrink=0.8, label="score margin")
    _class_legend(fig, result, [s.fused_mask for s in stages])
    caption = (
        "Row by row, coarse to fine: each stage's own class scores (its 1x1 score conv pushed "
        "through every upsampling layer after it), how decisively they vote, the prediction "
        "after fusing it with the coarser stages, and the pixels it changed."
    )
    return Rendered("fcn_stages", "FCN stages, coarse to fine", caption, _png(fig))


def fcn_class_figure(result: Explanation) -> Rendered:
    assert result.fcn is not None
    stages = result.fcn.stages
    classes = _present(result, [result.mask])
    others = [c for c in range(len(result.classes)) if c not in classes]
    classes = (classes + others)[:MAX_CLASS_COLUMNS]
    fig, axes = _grid(len(stages) + 1, len(classes), result.image)
    rows = [(s.label, s.contribution) for s in stages] + [("sum = logits", result.logits)]
    for col, c in enumerate(classes):
        limit = max(float(np.abs(v[c]).max()) for _, v in rows if v.size) or 1.0
        for row, (label, values) in enumerate(rows):
            shown = axes[row, col].imshow(values[c], cmap="RdBu_r", vmin=-limit, vmax=limit)
            _title(axes[row, col], f"{result.classes[c]}:\n{label}")
        fig.colorbar(shown, ax=axes[:, col], location="bottom", shrink=0.8)
    caption = (
        "Each stage's contribution to the score of each class (red raises it, blue lowers it); "
        "the last row is their sum, which is the model's logits exactly."
    )
    return Rendered("fcn_class_scores", "FCN class scores by stage", caption, _png(fig))


def fcn_kernel_figure(result: Explanation) -> Rendered | None:
    assert result.fcn is not None
    kernels = result.fcn.kernels
    if not kernels:
        return None
    fig, axes = _grid(len(kernels), 4, result.image, square=True)
    for row, view in enumerate(kernels):
        ax, mean = axes[row], view.learned.mean(0)
        limit = max(float(np.abs(view.bilinear).max()), float(np.abs(mean).max()))
        ax[0].imshow(view.bilinear, cmap="viridis", vmin=0, vmax=limit)
        _title(ax[0], f"{view.layer.removeprefix('head.')} (x{view.factor}):\nbilinear start")
        ax[1].imshow(mean, cmap="viridis", vmin=0, vmax=limit)
        frozen = ", frozen" if view.frozen else ""
        _title(ax[1], f"learned, mean over classes\n({100 * view.deviation:.1f} % changed{frozen})")
        diff = mean - view.bilinear
        d = float(np.abs(diff).max())
        ax[2].imshow(diff, cmap="RdBu_r", vmin=-(d or 1.0), vmax=d or 1.0)
        _title(
            ax[2],
            f"learned minus bilinear\n(largest {d:.3g})"
            if d
            else "learned minus bilinear\n(unchanged)",
        )
        ax[3].set_axis_on()
        centre = view.bilinear.shape[0] // 2
        for k in range(min(len(view.learned), 10)):
            ax[3].plot(view.learned[k, centre], color="0.6", linewidth=0.7)
        ax[3].plot(view.bilinear[centre], "k--", linewidth=1.2, label="bilinear")
        ax[3].tick_params(labelsize=6)
        ax[3].legend(fontsize=6)
        _title(ax[3], f"centre row; {100 * view.cross_class:.1f} % of\nthe weight mixes classes")
    caption = (
        "The learned transposed-convolution kernels next to the bilinear interpolation they "
        "were initialised to (each class's own filter; off-diagonal weights started at zero)."
    )
    return Rendered("fcn_kernels", "Transposed-convolution kernels", caption, _png(fig))


def _branch_rows(fig, axes, result: Explanation, maps: list[BranchMap], row: int) -> None:
    vmax = max((float(m.norm.max()) for m in maps if m.norm.size), default=1.0)
    for col, branch in enumerate(maps):
        norm = _heat(axes[row, col], result.image, branch.norm, vmax)
        _title(axes[row, col], f"{branch.name}:\ncontribution (L2 norm)")
        share = _heat(axes[row + 1, col], result.image, branch.share, 1.0, cmap="viridis")
        _title(
            axes[row + 1, col],
            f"{branch.name}:\nshare ({100 * branch.share.mean():.0f} % on average)",
        )
    fig.colorbar(norm, ax=axes[row, :], location="right", shrink=0.8)
    fig.colorbar(share, ax=axes[row + 1, :], location="right", shrink=0.8)


def aspp_figure(result: Explanation) -> Rendered:
    assert result.deeplab is not None
    branches = result.deeplab.branches
    fig, axes = _grid(2, len(branches), result.image)
    _branch_rows(fig, axes, result, branches, 0)
    caption = (
        "What each ASPP branch adds to the projection's output before its BN (the norm per "
        f"pixel, at /{result.deeplab.stride}), and its share of the branches' total; the "
        "contributions add up exactly to the projection's output."
    )
    return Rendered("aspp_branches", "ASPP branches", caption, _png(fig))


def aspp_summary_figure(result: Explanation) -> Rendered:
    assert result.deeplab is not None
    branches = result.deeplab.branches
    fig, axes = _grid(1, 2, result.image)
    shares = np.stack([b.share for b in branches])
    dominant = shares.argmax(0)
    colours = [tuple(int(255 * v) for v in _TAB10[k % len(_TAB10)]) for k in range(len(branches))]
    axes[0, 0].imshow(result.image, alpha=0.35)
    h, w = result.image.shape[:2]
    axes[0, 0].imshow(colorize(dominant, colours, None), extent=(0, w, h, 0), alpha=0.75,
                      interpolation="nearest")  # fmt: skip
    axes[0, 0].set_xlim(0, w)
    axes[0, 0].set_ylim(h, 0)
    _title(axes[0, 0], "the branch that\ncontributes most, per pixel")
    ax = axes[0, 1]
    ax.set_axis_on()
    means = shares.reshape(len(branches), -1).mean(1) * 100
    ax.barh(range(len(branches)), means, color=[np.asarray(c) / 255 for c in colours])
    ax.set_yticks(range(len(branches)), [b.name for b in branches], fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax.set_xlabel("mean share (%)", fontsize=7)
    _title(ax, "mean share over the image")
    _legend(fig, [b.name for b in branches], colours)
    return Rendered(
        "aspp_summary", "ASPP: the dominant branch", "Which branch dominates where.", _png(fig)
    )


def decoder_figure(result: Explanation) -> Rendered | None:
    deeplab = result.deeplab
    if deeplab is None or deeplab.decoder is None or deeplab.low_level_input_share is None:
        return None
    fig, axes = _grid(1, 4, result.image)
    parts = {b.name: b for b in deeplab.decoder}
    vmax = max(float(b.norm.max()) for b in deeplab.decoder if b.norm.size) or 1.0
    for col, name in enumerate(("ASPP", "low-level")):
        shown = _heat(axes[0, col], result.image, parts[name].norm, vmax)
        _title(axes[0, col], f"{name} part of the\ndecoder's first mixing conv")
    fig.colorbar(shown, ax=axes[0, :2], location="bottom", shrink=0.8)
    share = parts["low-level"].share
    shown = _heat(axes[0, 2], result.image, share, 1.0, cmap="viridis")
    _title(axes[0, 2], f"low-level share of that conv\n({100 * share.mean():.0f} % on average)")
    energy = deeplab.low_level_input_share
    _heat(axes[0, 3], result.image, energy, 1.0, cmap="viridis")
    _title(
        axes[0, 3],
        f"low-level share of the decoder\ninput energy ({100 * energy.mean():.0f} % on average)",
    )
    fig.colorbar(shown, ax=axes[0, 2:], location="bottom", shrink=0.8)
    caption = (
        "DeepLabv3+'s decoder at /4: what the upsampled ASPP output and the low-level "
        "projection each add to the decoder's first channel-mixing conv (exact; they add up "
        "to its output), the low-level share of it, and of the decoder input's energy."
    )
    return Rendered("decoder_low_level", "The v3+ decoder's low-level feature", caption, _png(fig))


def segnet_figure(result: Explanation) -> Rendered:
    assert result.segnet is not None
    stages = result.segnet.stages
    fig, axes = _grid(len(stages), 2, result.image)
    for row, stage in enumerate(stages):
        vmax = max(float(stage.unpooled_energy.max()), float(stage.output_energy.max())) or 1.0
        _heat(axes[row, 0], result.image, stage.unpooled_energy, vmax)
        _title(axes[row, 0], f"{stage.name} unpooled to /{stage.stride}\n"
                             f"({100 * stage.density:.1f} % non-zero)")  # fmt: skip
        shown = _heat(axes[row, 1], result.image, stage.output_energy, vmax)
        _title(axes[row, 1], f"after the stage's\nconvolutions (/{stage.stride})")
        fig.colorbar(shown, ax=axes[row, :], location="right", shrink=0.8)
    caption = (
        "Each decoder stage, deepest first: the feature energy (RMS over channels) of the "
        "sparse map max-unpooling makes with the encoder's indices, and after the stage's "
        "convolutions have densified it. The decoder is not linear, so this is where signal "
        "is, not an exact split of the scores."
    )
    return Rendered("segnet_decoder", "SegNet decoder stages", caption, _png(fig))


#: Matplotlib's tab10 colours, for branches (not classes).
_TAB10 = [
    (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
    (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5),
    (0.74, 0.74, 0.13), (0.09, 0.75, 0.81),
]  # fmt: skip


def render(result: Explanation) -> list[Rendered]:
    """Every figure of ``result``, the prediction first."""
    makers = [prediction_figure]
    if result.fcn is not None:
        makers += [fcn_stage_figure, fcn_class_figure, fcn_kernel_figure]
    if result.deeplab is not None:
        makers += [aspp_figure, aspp_summary_figure, decoder_figure]
    if result.segnet is not None:
        makers += [segnet_figure]
    figures = [make(result) for make in makers]
    return [f for f in figures if f is not None]
