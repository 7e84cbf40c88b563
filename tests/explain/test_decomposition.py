"""The decompositions are exact: FCN stages sum to the logits, ASPP branches (and the v3+
decoder's two parts) to the projection's pre-BN output, as the model itself computes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fcnlab.card import ModelCard
from fcnlab.engine.checkpoint import make_checkpoint
from fcnlab.explain import Explainer
from fcnlab.explain.deeplab import aspp_contributions, aspp_output, decoder_contributions
from fcnlab.explain.fcn import fcn_contributions, fcn_kernels
from fcnlab.explain.sizes import pad_input
from fcnlab.models.layers import bilinear_kernel
from tests.checkpoints import INFO, tiny_model
from tests.explain.conftest import picture, trained_looking


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= 1e-5 * scale


def card_of(model) -> ModelCard:
    return ModelCard.from_checkpoint(make_checkpoint(model, INFO, config={}))


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("fcn8s_resnet18", {}),
        ("fcn8s_vgg11", {}),
        ("fcn16s_resnet18", {"upsample": "bilinear"}),
        ("fcn8s_resnet18", {"output_stride": 8}),
        ("fcn32s_alexnet", {}),
        ("fcn8s_efficientnet_lite0", {}),
    ],
)
def test_fcn_stages_sum_to_the_logits_at_an_odd_size(one_thread, name, options):
    model = trained_looking(tiny_model(name, **options))
    x = torch.randn(2, 3, 37, 45)  # not a multiple of any stride: padded and cropped
    with torch.no_grad():
        parts = fcn_contributions(model, x)
        logits = model(x)
    assert [n for n, _ in parts] == ["stage5", *model.head.skip_names]
    assert all(part.shape == logits.shape == (2, 3, 37, 45) for _, part in parts)
    close(sum(part for _, part in parts), logits)
    if len(parts) > 1:  # every stage matters: no part is zero
        assert all(float(part.abs().max()) > 1e-3 for _, part in parts)


def test_the_fcn8s_explanation_holds_stages_fused_masks_and_kernels(one_thread, fcn8s):
    result = Explainer(fcn8s, card_of(fcn8s)).explain(picture(41, 59))
    fcn = result.fcn
    assert result.family == "fcn" and fcn is not None and result.deeplab is None
    assert [s.name for s in fcn.stages] == ["stage5", "stage4", "stage3"]
    assert [s.stride for s in fcn.stages] == [32, 16, 8]
    total = sum(s.contribution for s in fcn.stages)
    assert np.abs(total - result.logits).max() <= 1e-5 * max(1.0, np.abs(result.logits).max())
    assert fcn.residual <= 1e-4
    assert np.array_equal(fcn.stages[-1].fused_mask, result.mask)
    first = fcn.stages[0].contribution.argmax(0)
    assert np.array_equal(fcn.stages[0].fused_mask, first)
    assert result.mask.shape == result.image.shape[:2] == (41, 59)


def test_kernels_are_shown_next_to_their_bilinear_start(fcn8s):
    kernels = fcn_kernels(fcn8s.head)
    assert [k.layer for k in kernels] == [
        "head.upscores.stage4",
        "head.upscores.stage3",
        "head.upscore_final",
    ]
    assert [k.factor for k in kernels] == [2, 2, 8]
    final = kernels[-1]
    assert final.learned.shape == (3, 16, 16) and final.bilinear.shape == (16, 16)
    assert np.allclose(final.bilinear, bilinear_kernel(3, 16)[0, 0].numpy())
    assert 0 < final.deviation < 0.5 and 0 < final.cross_class < 1
    fresh = fcn_kernels(tiny_model("fcn8s_resnet18", freeze_final_upsample=True).head)
    assert all(k.deviation == 0 and k.cross_class == 0 for k in fresh)
    assert [k.frozen for k in fresh] == [False, False, True]
    assert fcn_kernels(tiny_model("fcn16s_resnet18", upsample="bilinear").head) == []


def _hooked_output(module: torch.nn.Module, model, x) -> torch.Tensor:
    """What ``module`` outputs while ``model(x)`` runs."""
    seen = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize(
    "name",
    ["deeplabv3_mobilenet_v2", "deeplabv3plus_mobilenet_v2", "deeplabv3plus_efficientnet_lite0"],
)
def test_aspp_branches_add_up_to_the_projection_input(one_thread, name):
    model = tiny_model(name)
    x = torch.randn(1, 3, 53, 67)
    projection = model.head.aspp.project[0][0]
    expected = _hooked_output(projection, model, x)  # the conv's output: BN's input
    with torch.no_grad():
        features = model.backbone(pad_input(model, x))  # as the segmenter runs it
        parts, total = aspp_contributions(model.head.aspp, features["stage5"])
    assert [n for n, _ in parts] == ["1x1", "3x3 rate 6", "3x3 rate 12", "3x3 rate 18",
                                     "image pooling"]  # fmt: skip
    close(total, expected)
    close(sum(part for _, part in parts), expected)
    result = Explainer(model, card_of(model)).explain(picture(53, 67))
    assert result.family == "deeplab" and result.deeplab is not None
    deeplab = result.deeplab
    assert deeplab.residual <= 1e-4 and deeplab.stride == 16
    shares = np.stack([b.share for b in deeplab.branches])
    assert np.allclose(shares.sum(0), 1.0, atol=1e-5)
    stage5 = tuple(features["stage5"].shape[-2:])  # 4 x 5 (EfficientNet-Lite: padded, 4 x 6)
    assert deeplab.branches[0].norm.shape == deeplab.projection_norm.shape == stage5


def test_the_v3plus_decoder_splits_into_aspp_and_low_level_parts(one_thread):
    model = tiny_model("deeplabv3plus_mobilenet_v2")
    x = torch.randn(1, 3, 45, 61)
    pointwise = model.head.decoder[0][3][0]
    expected = _hooked_output(pointwise, model, x)
    with torch.no_grad():
        features = model.backbone(x)
        _, projected = aspp_contributions(model.head.aspp, features["stage5"])
        close(aspp_output(model.head.aspp, projected), model.head.aspp(features["stage5"]))
        parts, mixed, share = decoder_contributions(
            model.head, aspp_output(model.head.aspp, projected), features["stage2"]
        )
    assert [n for n, _ in parts] == ["ASPP", "low-level"]
    close(mixed, expected)
    close(parts[0][1] + parts[1][1], expected)
    assert share.shape == (1, *features["stage2"].shape[-2:])
    assert float(share.min()) >= 0 and float(share.max()) <= 1
    result = Explainer(model, card_of(model)).explain(picture(45, 61))
    decoder = result.deeplab.decoder
    assert [b.name for b in decoder] == ["ASPP", "low-level"]
    assert np.allclose(decoder[0].share + decoder[1].share, 1.0, atol=1e-5)
    assert result.deeplab.low_level_input_share.shape == decoder[0].norm.shape


def test_deeplab_v3_has_no_decoder_view(one_thread):
    model = tiny_model("deeplabv3_mobilenet_v2")
    result = Explainer(model, card_of(model)).explain(picture(20, 30))
    assert result.deeplab.decoder is None and result.deeplab.low_level_input_share is None


def test_segnet_decoder_stages_are_explained(one_thread):
    model = tiny_model("segnet_basic")
    result = Explainer(model, card_of(model)).explain(picture(29, 43))
    assert result.family == "segnet" and result.fcn is None and result.deeplab is None
    stages = result.segnet.stages
    assert [s.name for s in stages] == ["stage4", "stage3", "stage2", "stage1"]
    assert [s.stride for s in stages] == [8, 4, 2, 1]
    assert stages[-1].output_energy.shape == (29, 43)  # odd sizes come back exactly
    assert stages[0].unpooled_energy.shape == stages[0].output_energy.shape == (4, 6)
    # One maximum per 2x2 window (windows at odd borders are smaller, so a little over 1/4).
    assert all(0 < s.density < 0.3 for s in stages)
    assert result.mask.shape == (29, 43)


@pytest.mark.parametrize("size", [(1, 1), (3, 200), (97, 5)])
def test_any_input_size(one_thread, fcn8s, size):
    result = Explainer(fcn8s, card_of(fcn8s)).explain(picture(*size))
    assert result.mask.shape == size
    assert all(s.contribution.shape == (3, *size) for s in result.fcn.stages)
    assert result.fcn.residual <= 1e-4
