"""Names, arguments and inputs a user can get wrong: one sentence each."""

from __future__ import annotations

import pytest
import torch

import fcnlab


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fcn9s_vgg16", r"architecture 'fcn9s' is not one of fcn32s, .*deeplabv3plus"),
        ("fcn8s_vgg17", r"backbone 'vgg17' is not one of vgg11, .*alexnet"),
        (
            "fcn4s_alexnet",
            r"fcn4s does not work with alexnet \(it needs the /4 feature .* for fcn4s: .*vgg11",
        ),
        (
            "deeplabv3plus_vgg16",
            r"needs an atrous backbone .*vgg16 is not.* for deeplabv3plus: .*mobilenet_v2",
        ),
    ],
)
def test_unknown_and_invalid_names_list_the_choices(name, message):
    with pytest.raises(fcnlab.FcnlabError, match=message):
        fcnlab.create_model(name, 21)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"num_classes": 2.5}, "num_classes must be a positive integer"),
        ({"num_classes": 3, "output_stride": 4}, "'output_stride' must be one of 8, 16, 32 or"),
        ({"num_classes": 3, "output_stride": 32}, "supports output_stride 8, 16, not 32"),
        ({"num_classes": 3, "upsample": "nearest"}, "'upsample' must be one of transposed, bil"),
        ({"num_classes": 3, "fc_width": 64}, "fc_width does not apply to deeplabv3_resnet18"),
        ({"num_classes": 3, "width_mult": 0.5}, "applies to mobilenet_v2 backbones only"),
        ({"num_classes": 3, "aux": "yes"}, "model option 'aux' must be true or false"),
        ({"num_classes": 3, "depth": 3}, "unknown model option.* depth; valid ones are output"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(fcnlab.FcnlabError, match=message):
        fcnlab.create_model("deeplabv3_resnet18", **kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("fcn8s_resnet18", {"fc_width": 64}, "fc_width applies to FCN on VGG/AlexNet only"),
        ("segnet_basic", {"aux": True}, "aux does not apply to segnet_basic"),
        ("segnet_vgg16", {"upsample": "bilinear"}, "upsample does not apply to segnet_vgg16"),
        ("segnet_vgg16", {"output_stride": 16}, "supports output_stride 32, not 16"),
        ("segnet_basic", {"backbone_weights": "imagenet"}, "trained from scratch"),
    ],
)
def test_options_a_model_does_not_read_are_refused(name, kwargs, message):
    with pytest.raises(fcnlab.FcnlabError, match=message):
        fcnlab.create_model(name, 3, **kwargs)


def test_options_object_and_keywords_agree():
    from fcnlab.models.options import ModelOptions

    a = fcnlab.create_model(
        "fcn8s_vgg11", 3, options=ModelOptions(fc_width=16, upsample="bilinear")
    )
    b = fcnlab.create_model("fcn8s_vgg11", 3, fc_width=16, upsample="bilinear")
    assert a.args == b.args
    assert a.args["fc_width"] == 16 and a.args["upsample"] == "bilinear"
    assert set(a.args) == set(ModelOptions.arg_names())


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 1, 32, 32), (1, 4, 32, 32)])
def test_wrong_input_rank_or_channels(shape):
    model = fcnlab.create_model("deeplabv3_mobilenet_v2", 3).eval()
    with pytest.raises(fcnlab.FcnlabError, match=r"expected an N x 3 x H x W image batch"):
        model(torch.randn(shape))


def test_args_rebuild_the_same_architecture():
    model = fcnlab.create_model("fcn8s_vgg11", 7, fc_width=16, output_stride=16)
    rebuilt = fcnlab.create_model(**model.args)
    assert model.args["output_stride"] == 16
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in rebuilt.state_dict().items()
    }


def test_deeplab_trains_with_batch_one_and_aux_head():
    model = fcnlab.create_model("deeplabv3plus_mobilenet_v2", 4, aux=True, output_stride=8).train()
    out = model(torch.randn(1, 3, 45, 61))
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (1, 4, 45, 61)
    model.eval()
    assert model(torch.randn(1, 3, 45, 61)).shape == (1, 4, 45, 61)


def test_reset_classifier_changes_every_class_layer():
    model = fcnlab.create_model("fcn8s_resnet18", 21, aux=True)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.args["num_classes"] == 5
    model.eval()
    assert model(torch.randn(1, 3, 40, 40)).shape == (1, 5, 40, 40)
