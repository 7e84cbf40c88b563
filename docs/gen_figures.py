"""Render the concept figures of the documentation site into docs/figures/*.png.

    python docs/gen_figures.py
    fcnlab train --set model.name=fcn8s_resnet18 --out /tmp/fcn8s   # the quickstart, FCN-8s
    python docs/gen_figures.py --explain /tmp/fcn8s/best.pt          # + the explain sheet

Every figure is computed by fcnlab's own code on small synthetic arrays (no dataset image, no
trained model): the bilinear kernel is :func:`fcnlab.models.layers.bilinear_kernel`, the
transposed convolution is FCN's :class:`fcnlab.models.layers.Upsample`, the atrous sampling
pattern is read off a dilated convolution's gradient at the rates of
:func:`fcnlab.models.heads.deeplab.aspp_rates`, and unpooling is SegNet's
:func:`fcnlab.models.layers.max_unpool` fed by a max-pool's indices. Rendering takes a few
seconds on one CPU core. ``--explain`` adds the explain sheet of a trained FCN checkpoint
(``fcnlab.explain`` on a synthetic image).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from fcnlab.models.heads.deeplab import aspp_rates
from fcnlab.models.layers import Upsample, bilinear_kernel, max_unpool

FIGURES = Path(__file__).resolve().parent / "figures"
DPI = 100
#: No software version in the files, so re-rendering with another matplotlib is no diff.
METADATA = {"Software": None}


def _grid(
    ax,
    values: np.ndarray,
    title: str,
    fmt: str = "{:.2f}",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = True,
) -> None:
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    h, w = values.shape
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)
    if annotate:
        lo = values.min() if vmin is None else vmin
        hi = values.max() if vmax is None else vmax
        colors = matplotlib.colormaps[cmap]
        for (i, j), v in np.ndenumerate(values):
            r, g, b, _ = colors(float(np.clip((v - lo) / max(hi - lo, 1e-9), 0, 1)))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
            ax.text(
                j,
                i,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )


def _save(fig, name: str) -> Path:
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=METADATA)
    plt.close(fig)
    return path


def bilinear_figure() -> Path:
    """The 4x4 kernel of a x2 upsampling, the 16x16 of a x8, and their 1-D profiles."""
    k4 = bilinear_kernel(1, 4)[0, 0].numpy()
    k16 = bilinear_kernel(1, 16)[0, 0].numpy()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    _grid(axes[0], k4, "x2: kernel 4, stride 2, padding 1", vmin=0, vmax=1)
    _grid(axes[1], k16, "x8: kernel 16, stride 8, padding 4", vmin=0, vmax=1, annotate=False)
    for kernel, label in ((k4, "kernel 4 (x2)"), (k16, "kernel 16 (x8)")):
        profile = np.sqrt(np.diag(kernel))  # the 1-D filter f of the kernel f f^T
        x = (np.arange(len(profile)) - (len(profile) - 1) / 2) / (len(profile) / 2)
        axes[2].plot(x, profile, "o-", label=label, markersize=4)
    axes[2].set_xlabel("tap position / factor (0 = kernel centre)")
    axes[2].set_ylabel("weight")
    axes[2].set_title("one row: 1 - |distance| / factor", fontsize=10)
    axes[2].set_ylim(0, 1.05)
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.suptitle("bilinear_kernel: the initial weights of FCN's transposed convolutions", y=1.02)
    return _save(fig, "bilinear_kernel.png")


def transposed_figure() -> Path:
    """A 3x3 map through a x2 transposed convolution (kernel 4, stride 2, padding 1)."""
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 4.0, 0.0], [3.0, 0.0, 1.0]])
    up = Upsample(1, 2)  # FCN's layer: ConvTranspose2d(1, 1, 4, stride=2, padding=1), bilinear
    kernel, stride, pad = 4, 2, 1
    with torch.no_grad():
        out = up(x[None, None])[0, 0].numpy()
    full_size = (x.shape[0] - 1) * stride + kernel  # before the padding is cropped: 8
    canvas = np.zeros((full_size, full_size))
    w = up.deconv.weight[0, 0].detach().numpy()
    for (i, j), v in np.ndenumerate(x.numpy()):
        canvas[i * stride : i * stride + kernel, j * stride : j * stride + kernel] += v * w
    assert np.allclose(canvas[pad:-pad, pad:-pad], out, atol=1e-6)  # the crop is the output

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 8, 6]})
    _grid(axes[0], x.numpy(), "input 3x3", fmt="{:.0f}", cmap="Blues", vmin=0, vmax=4)
    _grid(
        axes[1],
        canvas,
        f"every input pixel stamps its value x kernel\n"
        f"at stride {stride}: a {full_size}x{full_size} canvas",
        cmap="Blues",
        vmin=0,
        vmax=canvas.max(),
    )
    for (i, j), color in (((1, 1), "tab:red"), ((0, 0), "tab:orange")):
        axes[1].add_patch(
            Rectangle(
                (j * stride - 0.5, i * stride - 0.5),
                kernel,
                kernel,
                fill=False,
                edgecolor=color,
                linewidth=2.5,
            )
        )
    n = full_size
    axes[1].add_patch(
        Rectangle(
            (pad - 0.5, pad - 0.5),
            n - 2 * pad,
            n - 2 * pad,
            fill=False,
            edgecolor="black",
            linestyle="--",
            linewidth=2,
        )
    )
    axes[1].text(
        n / 2 - 0.5,
        n - 0.2,
        f"padding {pad}: the outer ring is cropped",
        ha="center",
        va="top",
        fontsize=9,
    )
    _grid(
        axes[2],
        out,
        f"output {out.shape[0]}x{out.shape[1]} = "
        f"({x.shape[0]} - 1) x {stride} - 2 x {pad} + {kernel}",
        cmap="Blues",
        vmin=0,
        vmax=canvas.max(),
    )
    fig.suptitle(
        "Transposed convolution, FCN's x2 upsampling (red, orange: the footprints of "
        "two input pixels)",
        y=1.02,
    )
    return _save(fig, "transposed_conv.png")


def _sampling_pattern(rate: int, size: int) -> np.ndarray:
    """Which input pixels one output pixel of a 3x3 conv with dilation ``rate`` reads."""
    conv = nn.Conv2d(1, 1, 3, padding=rate, dilation=rate, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    conv(x)[0, 0, size // 2, size // 2].backward()
    return (x.grad[0, 0] != 0).numpy().astype(float)


def atrous_figure() -> Path:
    """3x3 taps at rates 1, 2, 4, and ASPP's three rates at output stride 16."""
    size = 11
    rates = (1, 2, 4)
    aspp = aspp_rates(16)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.9), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
    for ax, rate in zip(axes, rates, strict=False):
        pattern = _sampling_pattern(rate, size)
        span = 3 + 2 * (rate - 1)
        _grid(
            ax,
            pattern,
            f"rate {rate}: 9 taps span {span}x{span}",
            cmap="Greens",
            annotate=False,
            vmin=0,
            vmax=1.3,
        )
        ax.plot(size // 2, size // 2, "x", color="black", markersize=9)
    big = 2 * aspp[-1] + 5
    layers = np.zeros((big, big))
    for k, rate in enumerate(aspp, start=1):
        pattern = _sampling_pattern(rate, big)
        layers = np.where(pattern > 0, k, layers)
    layers[big // 2, big // 2] = 4
    cmap = matplotlib.colors.ListedColormap(["#f4f4f4", "#1b9e77", "#d95f02", "#7570b3", "black"])
    ax = axes[3]
    ax.imshow(layers, cmap=cmap, vmin=0, vmax=4)
    ax.tick_params(length=0, labelbottom=False, labelleft=False)
    ax.set_title(
        f"ASPP at output stride 16: rates {', '.join(map(str, aspp))}\n"
        f"(on a {big}x{big} feature map)",
        fontsize=10,
    )
    for k, rate in enumerate(aspp, start=1):
        ax.plot([], [], "s", color=cmap(k), label=f"rate {rate}")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(1.0, 0.0))
    fig.suptitle(
        "Atrous (dilated) 3x3 convolution: the same 9 weights, a wider view (x: the output pixel)",
        y=1.03,
    )
    return _save(fig, "atrous.png")


def _example_feature() -> torch.Tensor:
    return torch.tensor(
        [
            [1.0, 3.0, 2.0, 0.0],
            [5.0, 2.0, 1.0, 7.0],
            [0.0, 1.0, 4.0, 2.0],
            [2.0, 6.0, 3.0, 1.0],
        ]
    )


def unpooling_figure() -> Path:
    """2x2 max-pool with indices, then SegNet's unpooling of the decoder's 2x2 map."""
    feature = _example_feature()
    pooled, indices = F.max_pool2d(feature[None, None], 2, 2, return_indices=True)
    decoded = torch.tensor([[0.9, 0.4], [0.6, 0.8]])[None, None]  # what the decoder has there
    unpooled = max_unpool(decoded, indices, feature.shape)[0, 0].numpy()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    _grid(axes[0], feature.numpy(), "encoder: 4x4 before the pool", fmt="{:.0f}", cmap="Blues")
    flat = indices[0, 0].flatten().tolist()
    for index in flat:
        i, j = divmod(index, feature.shape[1])
        axes[0].add_patch(
            Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2.5)
        )
    axes[0].axhline(1.5, color="black", linewidth=2)  # the four 2x2 pooling windows
    axes[0].axvline(1.5, color="black", linewidth=2)
    _grid(
        axes[1],
        pooled[0, 0].numpy(),
        "max-pool 2x2/2: maxima kept,\ntheir positions remembered (red)",
        fmt="{:.0f}",
        cmap="Blues",
        vmin=0,
        vmax=float(feature.max()),
    )
    _grid(
        axes[2],
        decoded[0, 0].numpy(),
        "decoder: its 2x2 map\nat the same stage",
        cmap="Oranges",
        vmin=0,
        vmax=1,
    )
    _grid(
        axes[3],
        unpooled,
        "max_unpool: each value back at its\nmaximum's position, 0 elsewhere",
        cmap="Oranges",
        vmin=0,
        vmax=1,
    )
    for index in flat:
        i, j = divmod(index, feature.shape[1])
        axes[3].add_patch(
            Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2.5)
        )
    fig.suptitle("SegNet's upsampling: unpooling with the encoder's pool indices", y=1.03)
    return _save(fig, "unpooling.png")


def upsampling_figure() -> Path:
    """One coarse map, x2 three ways: bilinear, transposed convolution, unpooling."""
    yy, xx = np.mgrid[0:8, 0:8]
    blob = np.exp(-((yy - 3.2) ** 2 + (xx - 4.1) ** 2) / 6.0)
    encoder = torch.tensor(blob + 0.15 * np.sin(3 * xx + 2 * yy), dtype=torch.float32)
    coarse, indices = F.max_pool2d(encoder[None, None], 2, 2, return_indices=True)
    with torch.no_grad():
        bilinear = Upsample(1, 2, mode="bilinear")(coarse)[0, 0].numpy()
        transposed = Upsample(1, 2, mode="transposed")(coarse)[0, 0].numpy()
        unpooled = max_unpool(coarse, indices, encoder.shape)[0, 0].numpy()
    top = float(coarse.max())
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    panels = (
        (coarse[0, 0].numpy(), "coarse 4x4 map"),
        (bilinear, "bilinear interpolation (fixed)\nDeepLab; FCN upsample=bilinear"),
        (transposed, "transposed conv, bilinear init\n(learnable; FCN)"),
        (unpooled, "unpooling with pool indices\n(sparse; SegNet, then convs)"),
    )
    for ax, (values, title) in zip(axes, panels, strict=True):
        _grid(ax, values, title, cmap="magma", vmin=0, vmax=top, annotate=False)
    fig.suptitle("Three ways to upsample x2 (computed by fcnlab's Upsample and max_unpool)", y=1.03)
    return _save(fig, "upsampling.png")


FIGURE_MAKERS = (
    bilinear_figure,
    transposed_figure,
    atrous_figure,
    unpooling_figure,
    upsampling_figure,
)


def explain_sheet(checkpoint: Path) -> Path:
    """The explain sheet of ``checkpoint`` (an FCN) on a synthetic image, as committed in
    docs/concepts/fcn-refinement.md; quantised to 64 colours to stay small."""
    import fcnlab
    from fcnlab.data.datasets.synthetic import render_shapes

    image, _ = render_shapes(np.random.default_rng(7), 4, 96, 128)
    with tempfile.TemporaryDirectory() as out:
        result = fcnlab.explain(checkpoint, Image.fromarray(np.asarray(image)), out=Path(out))
        sheet = Image.open(Path(out) / "fcn_stages.png").convert("RGB")
        if result.fcn is None:
            raise SystemExit(f"{checkpoint} is not an FCN; the sheet shows FCN stages.")
    path = FIGURES / "explain_fcn8s_stages.png"
    sheet.quantize(64).save(path, optimize=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--explain",
        type=Path,
        metavar="CHECKPOINT",
        help="also render the explain sheet of this FCN checkpoint (see fcn-refinement.md)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    makers = [*FIGURE_MAKERS] + ([lambda: explain_sheet(args.explain)] if args.explain else [])
    for make in makers:
        path = make()
        print(f"wrote {path.relative_to(FIGURES.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
