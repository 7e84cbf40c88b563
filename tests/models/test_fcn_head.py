"""FCN faithfulness: fc6/fc7 convolutionalisation, zero skips, staged 32s -> 16s -> 8s."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision

import fcnlab
from fcnlab.models.backbones.base import classifier_weights


def test_convolutionalised_head_matches_vgg_classifier_at_centre():
    vgg = torchvision.models.vgg11(weights=None).eval()
    model = fcnlab.create_model("fcn32s_vgg11", num_classes=3).eval()
    model.backbone.features.load_state_dict(vgg.features.state_dict())
    model.head.load_pretrained_classifier(classifier_weights(vgg.classifier[0], vgg.classifier[3]))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fc7_linear = vgg.classifier[:5](torch.flatten(vgg.avgpool(vgg.features(x)), 1))
        pool5 = model.backbone(x)["stage5"]
        fc7_conv = model.head.fc(pool5)
    assert pool5.shape[-2:] == (7, 7)
    assert fc7_conv.shape == (1, 4096, 7, 7)
    assert torch.allclose(fc7_conv[0, :, 3, 3], fc7_linear[0], atol=1e-4, rtol=1e-4)


def test_score_layer_has_no_activation_and_skips_start_at_zero():
    model = fcnlab.create_model("fcn8s_resnet18", num_classes=4).eval()
    for name in ("stage4", "stage3"):
        assert model.head.score_skips[name].weight.abs().sum() == 0
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert (out < 0).any(), "logits must not be clipped by a ReLU"


def test_upsampling_layers_follow_the_paper():
    head = fcnlab.create_model("fcn8s_vgg16", 21, fc_width=16).head
    final = head.upscore_final.deconv
    assert (final.kernel_size, final.stride, final.padding) == ((16, 16), (8, 8), (4, 4))
    for name in ("stage4", "stage3"):
        up = head.upscores[name].deconv
        assert (up.kernel_size, up.stride, up.padding) == ((4, 4), (2, 2), (1, 1))
    head32 = fcnlab.create_model("fcn32s_resnet18", 21).head
    assert head32.upscore_final.deconv.kernel_size == (64, 64)
    frozen = fcnlab.create_model("fcn8s_resnet18", 21, freeze_final_upsample=True).head
    assert not frozen.upscore_final.deconv.weight.requires_grad


def test_fcn16s_initialised_from_fcn32s_reproduces_its_predictions():
    fcn32 = fcnlab.create_model("fcn32s_vgg11", 4, fc_width=32, upsample="bilinear").eval()
    fcn16 = fcnlab.create_model("fcn16s_vgg11", 4, fc_width=32, upsample="bilinear").eval()
    report = fcnlab.init_from(fcn16, fcn32)
    assert "head.score_fr.weight" in report.copied
    assert "head.score_skips.stage4.weight" in report.new
    assert not report.unused and not report.skipped
    shared = set(fcn32.state_dict()) & set(fcn16.state_dict())
    assert set(report.copied) == shared
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        score32 = fcn32.head.score_fr(fcn32.head.fc(fcn32.backbone(x)["stage5"]))
        expected = fcn16.head.upscore_final(fcn16.head.upscores["stage4"](score32))
        a, b = fcn32(x), fcn16(x)
    # Exactly FCN-32s' scores, only upsampled 2x then 16x instead of 32x at once.
    assert torch.allclose(b, expected, atol=1e-6)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.95


def test_staged_transposed_init_reports_shape_changes(tmp_path):
    fcn16 = fcnlab.create_model("fcn16s_resnet18", 3)
    path = tmp_path / "fcn16s.pt"
    torch.save({"state_dict": fcn16.state_dict(), "model": {"name": "fcn16s_resnet18"}}, path)
    fcn8 = fcnlab.create_model("fcn8s_resnet18", 3)
    report = fcnlab.init_from(fcn8, path)
    assert any(s.startswith("head.upscore_final.deconv.weight") for s in report.skipped)
    assert "head.score_skips.stage3.weight" in report.new
    assert torch.equal(fcn8.head.score_fr.weight, fcn16.head.score_fr.weight)
    assert "copied" in str(report) and "new" in str(report)


def test_bilinear_mode_matches_interpolate():
    model = fcnlab.create_model("fcn32s_resnet18", 2, upsample="bilinear").eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        score = model.head.score_fr(model.backbone(x)["stage5"])
        out = model(x)
    ref = F.interpolate(score, scale_factor=32, mode="bilinear", align_corners=False)
    assert torch.allclose(out, ref, atol=1e-5)
