"""SegNet (Badrinarayanan, Kendall, Cipolla, TPAMI 2017): upsampling by max-unpooling.

Each 2x2/2 max-pool of the encoder keeps the positions of its maxima; the matching decoder
stage puts its input back at those positions (zeros elsewhere, :func:`max_unpool`) at the exact
pre-pool size, then convolves to densify the sparse map. The decoder mirrors the encoder: for
every encoder conv ``a -> b`` (k x k) the decoder has ``b -> a`` (k x k), deepest first, except
that it never narrows below the first stage's width; a 1x1 conv then scores the classes.

- ``segnet_vgg16`` / ``segnet_vgg16_bn``: VGG16's 13 convolutions (torchvision's weights load
  unchanged), no fully connected layers, decoder convs with BN + ReLU.
- ``segnet_basic``: the paper's small CamVid model, trained from scratch: 4 encoder stages of
  one 7x7 conv (64 maps, no bias) + BN + ReLU + pool; the decoder's 7x7 convs have BN and no
  ReLU ("SegNet-Basic" in the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import POOL_INDICES, Backbone, BackboneEntry, FeatureInfo
from fcnlab.models.backbones.base import indices_key, pool_with_indices, run_with_pool_indices
from fcnlab.models.backbones.weights import WeightsArg
from fcnlab.models.heads.base import Head
from fcnlab.models.layers import max_unpool
from fcnlab.models.options import ModelOptions

BASIC_WIDTH, BASIC_KERNEL, BASIC_STAGES = 64, 7, 4


def build(backbone: Backbone, num_classes: int, options: ModelOptions) -> SegNetDecoder:
    return SegNetDecoder(backbone, num_classes)


class SegNetDecoder(Head):
    """Unpool with the encoder's indices, then the mirrored convolutions, stage by stage."""

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        if not getattr(backbone, "pool_indices", False):
            raise FcnlabError("SegNet needs an encoder whose pools return their indices.")
        relu = getattr(backbone, "decoder_relu", True)
        convs = backbone.stage_convs()
        self.stage_names = [f.name for f in backbone.feature_info][::-1]  # deepest first
        floor = convs[0][-1].out_channels  # the decoder never narrows below this
        self.stages = nn.ModuleList(
            nn.Sequential(*[_mirror(conv, floor, relu) for conv in reversed(stage)])
            for stage in reversed(convs)
        )
        self.width = floor
        for module in self.stages.modules():
            if isinstance(module, nn.Conv2d):  # He et al.'s initialisation, as in the paper
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Conv2d(self.width, num_classes, 1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = features[self.stage_names[0]]
        for name, stage in zip(self.stage_names, self.stages, strict=True):
            before = features[f"stage{int(name[-1]) - 1}"]  # the map this stage's pool read
            x = stage(max_unpool(x, features[indices_key(name)], before.shape[-2:]))
        return self.classifier(x)


def _mirror(conv: nn.Conv2d, floor: int, relu: bool) -> nn.Sequential:
    out_channels = max(conv.in_channels, floor)
    kernel = conv.kernel_size[0]
    layers: list[nn.Module] = [
        nn.Conv2d(conv.out_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SegNetBasicEncoder(Backbone):
    """SegNet-Basic's encoder: 4 x (7x7 conv, 64 maps, no bias; BN; ReLU; 2x2 max-pool)."""

    pool_indices = True
    decoder_relu = False  # the paper's SegNet-Basic decoder has no non-linearity

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(BASIC_STAGES):
            in_channels = 3 if k == 0 else BASIC_WIDTH
            layers += [
                nn.Conv2d(
                    in_channels, BASIC_WIDTH, BASIC_KERNEL, padding=BASIC_KERNEL // 2, bias=False
                ),
                nn.BatchNorm2d(BASIC_WIDTH),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, 2),
            ]
        self.features = nn.Sequential(*layers)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        pool_with_indices(self.features)
        self._taps = {4 * k + 3: f"stage{k + 1}" for k in range(BASIC_STAGES)}
        self.feature_info = [
            FeatureInfo(f"stage{k + 1}", BASIC_WIDTH, 2 ** (k + 1)) for k in range(BASIC_STAGES)
        ]

    def forward(self, x):
        return run_with_pool_indices(self.features, x, self._taps)

    def stage_convs(self) -> list[list[nn.Conv2d]]:
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return [[conv] for conv in convs]


def build_basic_encoder(
    weights: WeightsArg, output_stride: int, pool_indices: bool = True
) -> SegNetBasicEncoder:
    if weights is not None:
        raise FcnlabError(
            "segnet_basic is trained from scratch and has no pretrained weights; set "
            "backbone_weights to null."
        )
    return SegNetBasicEncoder()


#: The encoder only SegNet uses, registered with the architecture (see the registry).
BASIC = BackboneEntry(
    build_basic_encoder,
    "segnet_basic",
    ("stage1", "stage2", "stage3", "stage4"),
    (16,),
    traits=frozenset({POOL_INDICES}),
    weight_sources=(),
)
