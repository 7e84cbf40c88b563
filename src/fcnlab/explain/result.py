"""What ``fcnlab explain`` computes: plain dataclasses of numpy arrays and the files written.

Every map is at the size the model saw: the image's own size times the checkpoint's working
scale (the image itself at that size is :attr:`Explanation.image`). Exactly one of ``fcn``,
``deeplab`` and ``segnet`` is set, by the model's architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class StageMap:
    """One FCN stage: the /32 path or one skip, before and after it is fused."""

    #: The backbone stage it scores (``stage5`` for the /32 path, ``stage4`` for pool4, ...).
    name: str
    #: How the page names it, e.g. ``"stage4 skip (/16)"``.
    label: str
    #: The actual stride of the feature it scores.
    stride: int
    #: C x H x W: this stage's class scores (its 1x1 score conv, bias included) pushed through
    #: every upsampling layer after it and cropped as the model crops. The contributions of
    #: all stages sum to the model's logits.
    contribution: np.ndarray
    #: H x W: the arg-max of the contributions of this stage and all coarser ones, i.e. what
    #: the model predicts when it stops fusing here (FCN-32s, then 16s, then 8s, ...).
    fused_mask: np.ndarray


@dataclass
class KernelView:
    """One learned transposed convolution next to the bilinear kernel it started from."""

    #: The layer's name in the model, e.g. ``head.upscores.stage4``.
    layer: str
    factor: int
    #: C x k x k: each class's own filter (the weights' diagonal, class c to class c;
    #: k = 2 x factor).
    learned: np.ndarray
    #: k x k: the bilinear filter every diagonal entry started from
    #: (:func:`fcnlab.models.layers.bilinear_kernel`; off-diagonal entries started at 0).
    bilinear: np.ndarray
    #: ``|W - W0| / |W0|`` over all C x C x k x k weights (Frobenius norms), W0 the bilinear
    #: initialisation: 0 means training left the kernel unchanged.
    deviation: float
    #: The share of the weights' absolute mass off the class diagonal (class mixing).
    cross_class: float
    #: True when training could not change it (``freeze_final_upsample``).
    frozen: bool


@dataclass
class FCNExplanation:
    #: Coarse to fine: the /32 path first, then each skip in fusion order.
    stages: list[StageMap]
    #: The learned transposed convolutions (none with ``upsample: bilinear``).
    kernels: list[KernelView]
    #: The model's upsampling method, ``transposed`` or ``bilinear``.
    upsample: str
    #: Largest absolute difference between the sum of the contributions and the logits.
    residual: float


@dataclass
class BranchMap:
    """One input of a 1x1 projection (an ASPP branch, or a part of the v3+ decoder input)."""

    #: ``"1x1"``, ``"3x3 rate 6"``, ..., ``"image pooling"``; ``"ASPP"``, ``"low-level"``.
    name: str
    #: h x w at the feature's resolution: the L2 norm over output channels of what this
    #: branch adds to the projection's pre-BN output.
    norm: np.ndarray
    #: h x w: ``norm`` divided by the sum of every branch's norm at that pixel (0 to 1).
    share: np.ndarray


@dataclass
class DeepLabExplanation:
    #: ASPP's branches, in concatenation order; their contributions add up exactly to the
    #: projection conv's output (its input to BN).
    branches: list[BranchMap]
    #: The projection's pre-BN output norm per pixel (h x w), what the branches add up to.
    projection_norm: np.ndarray
    #: The feature's stride (the output stride).
    stride: int
    #: Largest absolute difference between the sum of the branch contributions and the
    #: projection's pre-BN output (and, for v3+, of the decoder's two parts and its conv).
    residual: float
    #: v3+ only: the ASPP part and the low-level part of the decoder's first channel-mixing
    #: conv (its pointwise conv, pre-BN; the depthwise conv, BN and ReLU before it act on
    #: each channel alone, so the two parts add up exactly to its output), at /4.
    decoder: list[BranchMap] | None = None
    #: v3+ only: the low-level projection's share of the decoder input's energy per pixel
    #: (its 48 channels' squared norm over all 304 channels'), at /4.
    low_level_input_share: np.ndarray | None = None


@dataclass
class DecoderStage:
    """One SegNet decoder stage: unpool with the encoder's indices, then convolve."""

    #: The encoder stage whose pool it undoes (``stage5`` first on VGG16).
    name: str
    #: The stride of the map it produces (the pool's input).
    stride: int
    #: h x w: RMS over channels of the unpooled (sparse) map.
    unpooled_energy: np.ndarray
    #: h x w: RMS over channels after the stage's convolutions (densified).
    output_energy: np.ndarray
    #: The share of unpooled positions holding a non-zero value.
    density: float


@dataclass
class SegNetExplanation:
    #: Deepest first, in decoding order.
    stages: list[DecoderStage]


@dataclass
class Explanation:
    """How one model reached its prediction on one image (see :func:`fcnlab.explain`)."""

    model: str
    #: ``fcn``, ``deeplab`` or ``segnet``.
    family: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    #: H x W x 3 uint8: the image as the model saw it (at the working scale).
    image: np.ndarray
    #: C x H x W float32: the model's logits.
    logits: np.ndarray
    #: H x W: the predicted class of each pixel.
    mask: np.ndarray
    #: (H, W) of the image as given, before any resizing.
    source_size: tuple[int, int]
    fcn: FCNExplanation | None = None
    deeplab: DeepLabExplanation | None = None
    segnet: SegNetExplanation | None = None
    #: Every file written (the page first), empty until written.
    files: list[Path] = field(default_factory=list)
    #: The page, ``DIR/index.html``, once written.
    page: Path | None = None
