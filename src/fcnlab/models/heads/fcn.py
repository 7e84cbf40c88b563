"""The FCN head (Long et al.): score the deepest feature, fuse skips coarse to fine, upsample.

FCN-32s scores stage5 only; 16s adds stage4 (pool4), 8s stage3, 4s stage2, 2s stage1. On
VGG/AlexNet the deepest feature first goes through fc6/fc7, the classifier's Linear layers as
convolutions ("convolutionalised"); on other backbones it is scored by a 1x1 conv (d2l's
ResNet FCN). Skip scores start at zero, so a fresh FCN-16s computes what its FCN-32s did.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import Backbone
from fcnlab.models.heads.base import Head
from fcnlab.models.layers import ScoreConv, Upsample
from fcnlab.models.options import ModelOptions

#: The FCN variants: how many skips each fuses (32s: none ... 2s: stage4 down to stage1).
SKIPS = {"fcn32s": 0, "fcn16s": 1, "fcn8s": 2, "fcn4s": 3, "fcn2s": 4}


def stages_needed(skips: int) -> tuple[str, ...]:
    """stage5 and the ``skips`` stages above it, deepest first."""
    return tuple(f"stage{5 - k}" for k in range(skips + 1))


def build(backbone: Backbone, num_classes: int, options: ModelOptions, skips: int) -> FCNHead:
    """An FCN head; fc6/fc7 take the backbone's ImageNet classifier when it brought one."""
    if options.fc_width != 4096 and backbone.fc_kernel is None:
        raise FcnlabError(
            "fc_width applies to FCN on VGG/AlexNet only; this backbone has no fc6/fc7."
        )
    head = FCNHead(
        backbone,
        num_classes,
        skips,
        options.fc_width,
        options.upsample,
        options.freeze_final_upsample,
    )
    if backbone.pretrained_classifier is not None:
        head.load_pretrained_classifier(backbone.pretrained_classifier)
    return head


class FCNHead(Head):
    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        skips: int,
        fc_width: int = 4096,
        upsample: str = "transposed",
        freeze_final_upsample: bool = False,
    ) -> None:
        super().__init__()
        deepest = backbone.feature_info[-1]
        wanted = list(stages_needed(skips)[1:])
        missing = [name for name in wanted if name not in backbone.stage_names]
        if missing:
            raise FcnlabError(f"this FCN needs the {missing[0]} feature, which the backbone lacks.")
        self.skip_names = wanted
        self.size_divisor = deepest.stride  # fused maps must be exactly 1/stride of the input
        self.upsample_mode, self.freeze_final = upsample, freeze_final_upsample
        self.fc: nn.Sequential | None = None
        score_in = deepest.channels
        if backbone.fc_kernel is not None:
            self.fc = _fc6_fc7(backbone, fc_width, dilation=32 // deepest.stride)
            score_in = fc_width
        self.score_in = score_in
        self.strides = [deepest.stride] + [backbone.info(n).stride for n in wanted]
        self.skip_channels = {n: backbone.info(n).channels for n in wanted}
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """(Re)build every layer whose width is the number of classes."""
        self.num_classes = num_classes
        self.score_fr = ScoreConv(self.score_in, num_classes, 1)
        self.score_skips = nn.ModuleDict()
        self.upscores = nn.ModuleDict()
        pairs = zip(self.strides, self.strides[1:], strict=False)
        for name, (coarse, fine) in zip(self.skip_names, pairs, strict=True):
            score = ScoreConv(self.skip_channels[name], num_classes, 1)
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
            self.score_skips[name] = score
            self.upscores[name] = Upsample(num_classes, coarse // fine, self.upsample_mode)
        self.upscore_final = Upsample(
            num_classes, self.strides[-1], self.upsample_mode, frozen=self.freeze_final
        )

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = features["stage5"]
        if self.fc is not None:
            x = self.fc(x)
        score = self.score_fr(x)
        for name in self.skip_names:
            score = self.upscores[name](score) + self.score_skips[name](features[name])
        return self.upscore_final(score)

    def load_pretrained_classifier(self, weights: dict[str, torch.Tensor]) -> None:
        """Convolutionalise: fc6/fc7 take the classifier's Linear weights, reshaped."""
        assert self.fc is not None
        fc6, fc7 = self.fc.fc6, self.fc.fc7
        if fc6.out_channels != weights["fc6.weight"].shape[0]:
            raise FcnlabError(
                f"fc_width={fc6.out_channels} cannot take the ImageNet classifier weights "
                f"(width {weights['fc6.weight'].shape[0]}); use fc_width=4096 with them."
            )
        with torch.no_grad():
            fc6.weight.copy_(weights["fc6.weight"].view_as(fc6.weight))
            fc6.bias.copy_(weights["fc6.bias"])
            fc7.weight.copy_(weights["fc7.weight"].view_as(fc7.weight))
            fc7.bias.copy_(weights["fc7.bias"])


def _fc6_fc7(backbone: Backbone, width: int, dilation: int) -> nn.Sequential:
    # "Same" padding keeps the map size for any input (no 100-pixel padding trick); at the
    # centre of a 224x224 input the 7x7 window sees exactly what VGG's Linear fc6 saw.
    # AlexNet's 6x6 kernel needs one more pixel on the bottom/right than on the top/left.
    total = dilation * (backbone.fc_kernel - 1)
    before, after = total // 2, total - total // 2
    # Symmetric padding goes into the conv: oneDNN runs that ~20% faster than pad + conv.
    padding = before if before == after else 0
    layers = OrderedDict(
        fc6=nn.Conv2d(
            backbone.fc_in_channels, width, backbone.fc_kernel, dilation=dilation, padding=padding
        ),
        relu6=nn.ReLU(inplace=True),
        drop6=nn.Dropout(0.5),
        fc7=nn.Conv2d(width, width, 1),
        relu7=nn.ReLU(inplace=True),
        drop7=nn.Dropout(0.5),
    )
    if before != after:
        layers = OrderedDict(pad6=nn.ZeroPad2d((before, after, before, after)), **layers)
    return nn.Sequential(layers)
