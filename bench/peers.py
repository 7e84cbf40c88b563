"""Peer models from other libraries, as harness candidates (they run "as fcnlab").

Each peer is a :class:`fcnlab.bench.harness.Candidate` named ``library/model``; the harness
builds it with random weights and runs it through exactly the runners, input and timing that
fcnlab's own models get, so every execution backend (eager, channels_last, bf16, compile, ONNX
Runtime fp32 and int8 through fcnlab's exporter) applies to it too.

- ``torchvision/...``: torchvision's segmentation models (weights=None,
  weights_backbone=None); they return ``{"out": logits}``, so they are wrapped in
  :class:`LogitsOnly` (a module returning the tensor, which ONNX export needs).
- ``smp/...``: segmentation_models_pytorch's DeepLabV3Plus (``pip install
  segmentation-models-pytorch``, used only here); when it is not installed its rows carry
  that as their error.
- ``reference/fcn8s_vgg16``: the plain FCN-8s of ``reference_fcn8s.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fcnlab.bench.harness import Candidate
from reference_fcn8s import ReferenceFCN8s


class LogitsOnly(nn.Module):
    """Wraps a model returning ``{"out": logits, ...}`` so that it returns the logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def torchvision_builder(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        from torchvision.models import segmentation

        factory = getattr(segmentation, name)
        model = factory(weights=None, weights_backbone=None, num_classes=num_classes)
        return LogitsOnly(model)

    return build


def smp_builder(encoder: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        try:
            import segmentation_models_pytorch as smp
        except ImportError as error:
            raise RuntimeError(
                "segmentation_models_pytorch is not installed "
                "(pip install segmentation-models-pytorch)"
            ) from error
        return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None, classes=num_classes)

    return build


PEERS: dict[str, Candidate] = {
    "smp/deeplabv3plus_mobilenet_v2": Candidate(
        "smp/deeplabv3plus_mobilenet_v2", smp_builder("mobilenet_v2"), "smp"
    ),
    "smp/deeplabv3plus_resnet50": Candidate(
        "smp/deeplabv3plus_resnet50", smp_builder("resnet50"), "smp"
    ),
    **{
        f"torchvision/{name}": Candidate(
            f"torchvision/{name}", torchvision_builder(name), "torchvision"
        )
        for name in ("deeplabv3_mobilenet_v3_large", "fcn_resnet50", "deeplabv3_resnet50")
    },
    "reference/fcn8s_vgg16": Candidate("reference/fcn8s_vgg16", ReferenceFCN8s, "reference"),
}


def smp_available() -> bool:
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        return False
    return True
