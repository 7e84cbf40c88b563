"""Every registered model: any input size, finite gradients, deterministic eval."""

from __future__ import annotations

import pytest
import torch

import fcnlab
from fcnlab.models.registry import ARCHITECTURES, parse_name

SIZES = [(1, 3, 1, 1), (1, 3, 33, 47), (2, 3, 67, 93), (1, 3, 97, 131)]
HEAVY = ("resnet101", "vgg19", "vgg19_bn")


def small_kwargs(name: str) -> dict:
    """A narrow fc6/fc7 keeps the VGG/AlexNet heads light; everything else is as shipped."""
    arch, backbone = parse_name(name)
    if "fc_width" in ARCHITECTURES[arch].options and backbone.startswith(("vgg", "alexnet")):
        return {"fc_width": 32}
    return {}


def _params(name: str):
    marks = [pytest.mark.slow] if name.endswith(HEAVY) else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_params(n) for n in fcnlab.list_models()])
def test_model_any_size_backward_and_determinism(name):
    model = fcnlab.create_model(name, num_classes=5, **small_kwargs(name))
    model.eval()
    with torch.no_grad():
        for shape in SIZES:
            x = torch.randn(shape)
            out = model(x)
            assert out.shape == (shape[0], 5, shape[2], shape[3])
            assert torch.isfinite(out).all()
            assert torch.equal(out, model(x)), "eval mode must be deterministic"

    model.train()
    x = torch.randn(2, 3, 41, 35)
    out = model(x)
    assert out.shape == (2, 5, 41, 35)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_registry_has_the_promised_zoo():
    names = set(fcnlab.list_models())
    for arch in ("fcn32s", "fcn16s", "fcn8s", "fcn4s", "fcn2s"):
        for backbone in (
            "vgg11",
            "vgg13",
            "vgg16",
            "vgg19",
            "resnet18",
            "resnet34",
            "resnet50",
            "resnet101",
        ):
            assert f"{arch}_{backbone}" in names
    assert {"fcn32s_alexnet", "fcn16s_alexnet", "fcn8s_alexnet"} <= names
    assert "fcn4s_alexnet" not in names
    for arch in ("deeplabv3", "deeplabv3plus"):
        for backbone in ("mobilenet_v2", "resnet50", "resnet101"):
            assert f"{arch}_{backbone}" in names
