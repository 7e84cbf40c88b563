"""A plain FCN-8s over VGG16, written from the paper (Long, Shelhamer, Darrell, CVPR 2015).

The yardstick for fcnlab's ``fcn8s_vgg16``: what a tutorial-style implementation looks like.
VGG16's convolutions (torchvision's ``vgg16().features``), fc6 as a 7x7 convolution with
4096 channels (padding 3 keeps the /32 grid), fc7 as 1x1 with 4096, a 1x1 class scorer on
fc7, pool4 and pool3; the fc7 scores are upsampled 2x by a transposed convolution and added
to the pool4 scores, that sum upsampled 2x and added to the pool3 scores, and the result
upsampled 8x to the input. Cropping is done simply: the input is zero-padded to a multiple
of 32 and the output cropped back. Transposed convolutions start as bilinear upsampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """Weights making a per-channel transposed convolution a bilinear upsampler."""
    factor = (kernel + 1) // 2
    centre = factor - 1 if kernel % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(kernel, dtype=torch.float32) - centre).abs() / factor
    weight = torch.zeros(channels, channels, kernel, kernel)
    weight[range(channels), range(channels)] = ramp[:, None] * ramp[None, :]
    return weight


def upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Exact ``factor``x upsampling: kernel 2*factor, stride factor, padding factor/2."""
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, factor, factor // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return layer


class ReferenceFCN8s(nn.Module):
    def __init__(self, num_classes: int = 21) -> None:
        super().__init__()
        features = vgg16(weights=None).features
        self.to_pool3, self.to_pool4, self.to_pool5 = features[:17], features[17:24], features[24:]
        self.fc6 = nn.Sequential(nn.Conv2d(512, 4096, 7, padding=3), nn.ReLU(True), nn.Dropout2d())
        self.fc7 = nn.Sequential(nn.Conv2d(4096, 4096, 1), nn.ReLU(True), nn.Dropout2d())
        self.score_fc7 = nn.Conv2d(4096, num_classes, 1)
        self.score_pool4 = nn.Conv2d(512, num_classes, 1)
        self.score_pool3 = nn.Conv2d(256, num_classes, 1)
        self.up_fc7, self.up_pool4 = upsampler(num_classes, 2), upsampler(num_classes, 2)
        self.up_final = upsampler(num_classes, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % 32, 0, -height % 32))
        pool3 = self.to_pool3(x)
        pool4 = self.to_pool4(pool3)
        scores = self.score_fc7(self.fc7(self.fc6(self.to_pool5(pool4))))
        scores = self.up_fc7(scores) + self.score_pool4(pool4)
        scores = self.up_pool4(scores) + self.score_pool3(pool3)
        return self.up_final(scores)[..., :height, :width]
