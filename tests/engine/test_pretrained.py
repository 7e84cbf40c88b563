"""Fine-tuning from a pretrained backbone: the backbone's normalisation travels with the model
(checkpoint, ONNX card, serve), the weights' source is recorded and reported, and init_from
across class counts keeps all but the class scores."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import fcnlab
from fcnlab.config import apply_overrides
from fcnlab.engine.checkpoint import (
    load_checkpoint,
    make_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from fcnlab.engine.train import train
from fcnlab.infer import Predictor
from fcnlab.models.backbones import lite_weights as lw
from fcnlab.serialization import file_sha256
from tests.checkpoints import INFO
from tests.engine.test_train import tiny_config
from tests.models.test_timm_backbones import body_of, lite_layout

LITE_MEAN = [0.5, 0.5, 0.5]


@pytest.fixture(scope="module")
def lite_run(tmp_path_factory):
    """Two steps of FCN-8s EfficientNet-Lite0 on synthetic data, from a weights file."""
    root = tmp_path_factory.mktemp("lite")
    weights = root / "lite0.pth"
    torch.save(lite_layout(body_of("efficientnet_lite0")), weights)
    cfg = tiny_config(
        "model.name=fcn8s_efficientnet_lite0",
        f"model.backbone_weights={weights}",
        "train.steps=2",
        "train.val_every=2",
        "train.int8_companion=false",
        "train.precision=fp32",
    )
    return train(cfg, root / "run"), weights


def test_the_checkpoint_holds_the_backbones_normalisation_and_weights_source(lite_run):
    run_dir, weights = lite_run
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint["normalization"] == {"mean": LITE_MEAN, "std": LITE_MEAN}
    assert checkpoint["backbone_weights"] == {
        "source": "file",
        "file": "lite0.pth",
        "sha256": file_sha256(weights),
    }
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert evaluation["backbone_weights"]["sha256"] == file_sha256(weights)
    report = (run_dir / "report.md").read_text()
    facts = report[: report.index("## ", report.index("## ") + 3)]  # the first section
    assert f"file lite0.pth, sha256 {file_sha256(weights)[:12]}" in facts


def test_a_torchvision_backbone_keeps_imagenet_statistics(tmp_path):
    run_dir = train(tiny_config("train.steps=2", "train.int8_companion=false"), tmp_path / "r")
    checkpoint = load_checkpoint(run_dir / "best.pt")
    assert checkpoint["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert checkpoint["backbone_weights"] is None
    assert "random initialisation" in (run_dir / "report.md").read_text()


@pytest.fixture(scope="module")
def lite_file(tmp_path_factory):
    """An FCN-8s EfficientNet-Lite0 checkpoint with random but plausible weights (its masks
    depend on the input), labelled as training labels it: the backbone's normalisation."""
    torch.manual_seed(0)
    name = "fcn8s_efficientnet_lite0"
    model = fcnlab.create_model(name, len(INFO.classes))
    model.backbone.body.load_state_dict(
        lw.map_lite_keys(lite_layout(model.backbone.body), model.backbone.body)
    )
    torch.nn.init.normal_(model.head.score_skips["stage3"].weight, std=0.5)
    labels = INFO.normalized_by(*fcnlab.models.input_normalization(name))
    path = tmp_path_factory.mktemp("lite_ckpt") / "lite.pt"
    return save_checkpoint(make_checkpoint(model.eval(), labels, config={}), path)


def _manual_mask(model, image: np.ndarray, mean, std) -> np.ndarray:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.eval()(x).argmax(1)[0].numpy()


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def test_predict_uses_the_backbones_normalisation(lite_file):
    checkpoint = load_checkpoint(lite_file)
    assert checkpoint["normalization"]["mean"] == LITE_MEAN
    model = model_from_checkpoint(checkpoint)
    image = _image()
    right = _manual_mask(model, image, LITE_MEAN, LITE_MEAN)
    wrong = _manual_mask(model, image, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (right != wrong).any(), "the test needs a model that normalisation changes"
    predicted = Predictor.load(lite_file, backend="eager").predict(Image.fromarray(image)).mask
    np.testing.assert_array_equal(predicted, right)


def test_the_onnx_card_and_masks_use_the_backbones_normalisation(lite_file, tmp_path):
    pytest.importorskip("onnxruntime")
    from fcnlab.card import METADATA_KEY, ModelCard
    from fcnlab.export import export_checkpoint
    from fcnlab.export.onnx import read_metadata

    onnx_file = tmp_path / "lite.onnx"
    export_checkpoint(lite_file, onnx_file, "onnx")
    card = ModelCard.from_json(read_metadata(onnx_file)[METADATA_KEY])
    assert list(card.mean) == LITE_MEAN and list(card.std) == LITE_MEAN
    image = _image(1)
    ours = Predictor.load(lite_file, backend="eager").predict(Image.fromarray(image)).mask
    exported = Predictor.load(onnx_file).predict(Image.fromarray(image)).mask
    assert (ours == exported).mean() >= 0.999


def test_serve_reports_and_uses_the_backbones_normalisation(lite_file):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fcnlab.serve import create_app

    predictor = Predictor.load(lite_file, backend="eager")
    image = _image(2)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    with TestClient(create_app(predictor)) as client:
        health = client.get("/health").json()
        assert health["normalization"] == {"mean": LITE_MEAN, "std": LITE_MEAN}
        answer = client.post("/predict", files={"file": ("x.png", buffer.getvalue(), "image/png")})
    assert answer.status_code == 200
    served = np.asarray(Image.open(io.BytesIO(answer.content)))
    model = model_from_checkpoint(load_checkpoint(lite_file))
    np.testing.assert_array_equal(served, _manual_mask(model, image, LITE_MEAN, LITE_MEAN))


def test_init_from_another_class_count_keeps_all_but_the_class_scores(lite_run):
    run_dir, _ = lite_run
    model = fcnlab.create_model("fcn8s_efficientnet_lite0", 7)
    report = fcnlab.init_from(model, run_dir / "best.pt")
    source = load_checkpoint(run_dir / "best.pt")["state_dict"]
    class_wide = {
        k for k, v in model.state_dict().items() if k in source and v.shape != source[k].shape
    }
    assert class_wide and all(k.startswith("head.") for k in class_wide)
    assert {s.split(" ")[0] for s in report.skipped} == class_wide
    assert not report.new and not report.unused
    backbone = [k for k in report.copied if k.startswith("backbone.")]
    assert len(backbone) == len([k for k in source if k.startswith("backbone.")])
    assert "skipped (shape)" in str(report)
    torch.testing.assert_close(
        model.state_dict()["backbone.body.conv_stem.weight"],
        source["backbone.body.conv_stem.weight"],
    )


def test_a_bad_model_name_in_a_config_lists_the_timm_convention():
    with pytest.raises(fcnlab.FcnlabError, match=r"tu-<timm model>"):
        apply_overrides(tiny_config(), ["model.name=fcn8s_efficientnet_lite9"])


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_bn_keeps_the_backbones_statistics_and_trains_the_rest(tmp_path, freeze):
    cfg = tiny_config(
        "train.steps=2",
        "train.val_every=2",
        "train.int8_companion=false",
        f"train.freeze_bn={str(freeze).lower()}",
    )
    state = load_checkpoint(train(cfg, tmp_path / "run") / "best.pt")["state_dict"]
    backbone_means = [
        v for k, v in state.items() if k.startswith("backbone.") and "running_mean" in k
    ]
    head_means = [v for k, v in state.items() if k.startswith("head.") and "running_mean" in k]
    assert backbone_means and head_means
    # Freshly built BatchNorm holds mean 0; two training steps move it unless it is frozen.
    assert all(bool((m == 0).all()) for m in backbone_means) is freeze
    assert not all(bool((m == 0).all()) for m in head_means)  # the head's BN always learns
    scales = [
        state[k.replace("running_mean", "weight")]
        for k in state
        if k.startswith("backbone.") and k.endswith("running_mean")
    ]
    assert any(not bool((w == 1).all()) for w in scales)  # BN's affine still trains
