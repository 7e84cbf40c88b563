"""Backbone weights: torchvision state dicts from a path or the torch.hub cache, clear errors."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

import fcnlab
from fcnlab.models.backbones.weights import imagenet_weights


def test_state_dict_from_path_loads_unchanged(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = fcnlab.create_model("fcn8s_resnet18", 3, backbone_weights=path)
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(
        model.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var
    )


def test_vgg_weights_convolutionalise_fc6_fc7(tmp_path):
    reference = torchvision.models.vgg11(weights=None)
    path = tmp_path / "vgg11.pth"
    torch.save(reference.state_dict(), path)
    model = fcnlab.create_model("fcn32s_vgg11", 3, backbone_weights=path)
    fc6 = model.head.fc.fc6.weight
    assert fc6.shape == (4096, 512, 7, 7)
    assert torch.equal(fc6.flatten(1), reference.classifier[0].weight)
    assert torch.equal(model.head.fc.fc7.weight[:, :, 0, 0], reference.classifier[3].weight)


def test_weights_of_another_architecture_are_named(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(torchvision.models.vgg11(weights=None).state_dict(), path)
    with pytest.raises(fcnlab.FcnlabError, match=r"do not match resnet18: .*missing keys"):
        fcnlab.create_model("fcn8s_resnet18", 3, backbone_weights=path)


def test_shape_mismatch_is_named(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(fcnlab.FcnlabError, match=r"conv1.weight: file 32x3x7x7, resnet18 64x3x7x7"):
        fcnlab.create_model("fcn8s_resnet18", 3, backbone_weights=path)


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(fcnlab.FcnlabError, match="truncated or not a PyTorch file"):
        fcnlab.create_model("fcn8s_resnet18", 3, backbone_weights=truncated)
    with pytest.raises(fcnlab.FcnlabError, match="does not exist"):
        fcnlab.create_model("fcn8s_resnet18", 3, backbone_weights=tmp_path / "nope.pth")


def test_imagenet_weights_come_from_the_torch_hub_cache(tmp_path):
    reference = torchvision.models.mobilenet_v2(weights=None)
    url = imagenet_weights("mobilenet_v2").url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    assert str(cached).startswith(str(tmp_path)), "tests must use their own TORCH_HOME"
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    model = fcnlab.create_model("deeplabv3plus_mobilenet_v2", 3, backbone_weights="imagenet")
    assert torch.equal(model.backbone.features[0][0].weight, reference.features[0][0].weight)


def test_offline_download_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(fcnlab.FcnlabError, match=r"could not download .* when offline, copy"):
        fcnlab.create_model("fcn32s_resnet18", 3, backbone_weights="imagenet")
