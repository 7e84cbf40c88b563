"""Building blocks shared by the heads: bilinear upsampling, conv-BN-ReLU, separable convs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Transposed-conv weights that perform bilinear interpolation, channel by channel.

    One bilinear filter per channel on the diagonal, zeros elsewhere (d2l's
    ``bilinear_kernel``). With kernel 2f, stride f and padding f/2 this reproduces
    ``F.interpolate(scale_factor=f, mode="bilinear", align_corners=False)`` away from borders.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    idx = torch.arange(channels)
    weight[idx, idx] = filt
    return weight


class ScoreConv(nn.Conv2d):
    """A 1x1 class-score convolution that runs in fp32 under CPU bf16 autocast.

    oneDNN's AMX bf16 backward of a 1x1 convolution from ~3000 or more channels to fewer than
    16 corrupts the heap with 2+ threads (torch 2.14.1; FCN's score_fr after fc7's 4096
    channels with 1-15 classes; reproduced in tests/models/test_layers.py). The layer costs
    1/4096 of fc7, so fp32 here is free and gives fp32 logits besides. Elsewhere (fp32, GPUs,
    bf16 weights of the inference backend) it is a plain ``nn.Conv2d``, state dict included.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cpu_autocast = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        if cpu_autocast and self.weight.dtype == torch.float32:
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


#: From this factor on, the transposed conv runs as a 3x3 conv + pixel shuffle (same result):
#: oneDNN's large-kernel transposed conv is slow in fp32 and 50x slower in bf16.
SUBPIXEL_MIN_FACTOR = 4


def subpixel_weight(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """The 3x3 conv weight that, followed by ``pixel_shuffle(factor)``, equals
    ``conv_transpose2d(x, weight, stride=factor, padding=factor // 2)`` for a
    ``2*factor`` kernel.

    Output pixel ``q*f + r`` of the transposed conv sums input pixels ``q - d`` (``d`` in
    -1, 0, 1) times kernel tap ``d*f + r + f/2`` where that tap exists; a padded 3x3 conv
    with one output channel per (class, phase ``r``) computes exactly these sums.
    """
    c_in, c_out, f = weight.shape[0], weight.shape[1], factor
    t = torch.arange(3, device=weight.device)[:, None]
    r = torch.arange(f, device=weight.device)[None, :]
    tap = (1 - t) * f + r + f // 2  # (3, f): kernel index of conv tap t for phase r
    valid = (tap >= 0) & (tap < 2 * f)
    tap = tap.clamp(0, 2 * f - 1)
    taps = weight[:, :, tap[:, :, None, None], tap[None, None, :, :]]  # Ci, Co, 3, f, 3, f
    taps = taps * (valid[:, :, None, None] & valid[None, None, :, :]).to(weight.dtype)
    return taps.permute(1, 3, 5, 0, 2, 4).reshape(c_out * f * f, c_in, 3, 3)


def subpixel_transposed_conv(x: torch.Tensor, weight: torch.Tensor, factor: int) -> torch.Tensor:
    return F.pixel_shuffle(F.conv2d(x, subpixel_weight(weight, factor), padding=1), factor)


class Upsample(nn.Module):
    """Upsample score maps by an integer ``factor``.

    ``mode="transposed"``: a learnable transposed conv (kernel 2f, stride f, padding f/2)
    initialised to bilinear, as in FCN; ``frozen`` fixes it at bilinear. ``mode="bilinear"``:
    plain ``F.interpolate``. A factor of 1 (after dilation) is the identity.
    """

    def __init__(self, channels: int, factor: int, mode: str = "transposed", frozen: bool = False):
        super().__init__()
        self.factor, self.mode = factor, mode
        self.deconv: nn.ConvTranspose2d | None = None
        if factor > 1 and mode == "transposed":
            self.deconv = nn.ConvTranspose2d(
                channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False
            )
            with torch.no_grad():
                self.deconv.weight.copy_(bilinear_kernel(channels, 2 * factor))
            self.deconv.weight.requires_grad_(not frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deconv is not None:
            if self.factor < SUBPIXEL_MIN_FACTOR:
                return self.deconv(x)
            return subpixel_transposed_conv(x, self.deconv.weight, self.factor)
        if self.factor == 1:
            return x
        size = (x.shape[-2] * self.factor, x.shape[-1] * self.factor)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class PoolingBatchNorm(nn.BatchNorm2d):
    """BatchNorm that tolerates a single value per channel (image pooling, batch of one).

    A 1x1 map from one image has no batch statistics; training-mode BN would fail. In that
    case this normalises with the running statistics and leaves them unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1
) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def separable_conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1
) -> nn.Sequential:
    """Depthwise (atrous) conv + BN + ReLU, then pointwise conv + BN + ReLU (DeepLabv3+)."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
        ),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        conv_bn_relu(in_channels, out_channels, 1),
    )


def max_unpool(x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Max-unpooling (SegNet): each value of ``x`` goes back where its max-pool found it.

    ``indices`` are the pool's ``return_indices`` (positions in each pre-pool H x W plane) and
    ``size`` is the pre-pool H, W, so odd sizes come back exactly; every other position is 0.
    While tracing (ONNX, TorchScript) it is written as a scatter, which ONNX exports at dynamic
    sizes (as ScatterElements), unlike ``max_unpool2d``; eager runs use ``max_unpool2d``,
    about 2x faster on the CPU (the results are identical), unless deterministic algorithms
    are asked for (``train.deterministic``), which ``max_unpool2d`` does not promise.
    """
    if not torch.jit.is_tracing() and not torch.are_deterministic_algorithms_enabled():
        return F.max_unpool2d(x, indices, 2, 2, output_size=size)
    n, c = x.shape[0], x.shape[1]
    h, w = size[0], size[1]
    flat = x.new_zeros(n, c, h * w)
    return flat.scatter(2, indices.flatten(2), x.flatten(2)).view(n, c, h, w)
