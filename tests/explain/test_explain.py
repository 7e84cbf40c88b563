"""``fcnlab.explain`` and ``fcnlab explain``: the files it writes, its sizes and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import fcnlab
from fcnlab.card import ModelCard
from fcnlab.cli import app
from fcnlab.engine.checkpoint import make_checkpoint, save_checkpoint
from fcnlab.errors import FcnlabError
from fcnlab.explain import Explainer, Explanation
from fcnlab.explain.figures import MAX_CLASS_COLUMNS, grid_pixels
from fcnlab.models.heads.base import Head
from tests.checkpoints import INFO, tiny_model, write_checkpoint
from tests.explain.conftest import picture, trained_looking

runner = CliRunner()


@pytest.fixture(scope="module")
def fcn_file(tmp_path_factory):
    model = trained_looking(tiny_model("fcn8s_vgg11"))
    path = tmp_path_factory.mktemp("explain") / "fcn8s.pt"
    return save_checkpoint(make_checkpoint(model, INFO, config={}), path)


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_fcnlab_explain_is_the_package_and_the_function():
    from fcnlab.explain import explain

    assert callable(fcnlab.explain)
    assert fcnlab.explain.Explainer is Explainer
    assert "explain" in fcnlab.__all__ and explain.__module__ == "fcnlab.explain.api"


def test_fcn_files_exist_with_the_expected_sizes(one_thread, fcn_file, image_file, tmp_path):
    out = tmp_path / "out"
    result = fcnlab.explain(fcn_file, image_file, out=out)
    assert isinstance(result, Explanation) and result.page == out / "index.html"
    names = {p.name for p in result.files}
    stages = [f"fused_{s}.png" for s in ("stage5", "stage4", "stage3")]
    figures = ["prediction.png", "fcn_stages.png", "fcn_class_scores.png", "fcn_kernels.png"]
    assert names == {"index.html", "mask.png", "explain.json", *stages, *figures}
    assert all(p.is_file() and p.stat().st_size > 0 for p in result.files)
    h, w = 37, 53
    for name in ["mask.png", *stages]:
        assert png_size(out / name) == (w, h)
        with Image.open(out / name) as mask:
            assert mask.mode == "P"
    assert np.array_equal(np.array(Image.open(out / "mask.png")), result.mask)
    assert np.array_equal(np.array(Image.open(out / "fused_stage3.png")), result.mask)
    assert png_size(out / "prediction.png") == grid_pixels(1, 2, h, w)
    assert png_size(out / "fcn_stages.png") == grid_pixels(3, 4, h, w)
    classes = min(MAX_CLASS_COLUMNS, len(INFO.classes))
    assert png_size(out / "fcn_class_scores.png") == grid_pixels(4, classes, h, w)
    assert png_size(out / "fcn_kernels.png") == grid_pixels(3, 4, h, w, square=True)
    page = result.page.read_text()
    for name in figures:
        assert f'src="{name}"' in page
    assert "http://" not in page and "https://" not in page  # self-contained
    info = json.loads((out / "explain.json").read_text())
    assert info["model"] == "fcn8s_vgg11" and info["size"] == [w, h]
    assert [s["stage"] for s in info["fcn"]["stages"]] == ["stage5", "stage4", "stage3"]
    assert info["fcn"]["residual"] <= 1e-4
    assert info["fcn"]["stages"][-1]["agrees_with_final"] == 1.0


@pytest.mark.parametrize(
    ("name", "figures"),
    [
        ("deeplabv3plus_mobilenet_v2", ["aspp_branches", "aspp_summary", "decoder_low_level"]),
        ("deeplabv3_mobilenet_v2", ["aspp_branches", "aspp_summary"]),
        ("segnet_basic", ["segnet_decoder"]),
    ],
)
def test_deeplab_and_segnet_pages(one_thread, tmp_path, image_file, name, figures):
    checkpoint = write_checkpoint(tmp_path / f"{name}.pt", name)
    result = fcnlab.explain(checkpoint, image_file, out=tmp_path / "out")
    pngs = {p.stem for p in result.files if p.suffix == ".png"}
    assert pngs == {"prediction", "mask", *figures}
    if "aspp_branches" in figures:
        assert png_size(tmp_path / "out" / "aspp_branches.png") == grid_pixels(2, 5, 37, 53)
    page = result.page.read_text()
    assert all(f'src="{f}.png"' in page for f in figures)


def test_without_out_nothing_is_written(one_thread, fcn_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = fcnlab.explain(fcn_file, picture(20, 24))
    assert result.files == [] and result.page is None and list(tmp_path.iterdir()) == []


def test_large_images_are_shrunk_and_the_working_scale_applies(one_thread, tmp_path):
    checkpoint = write_checkpoint(tmp_path / "half.pt", "fcn8s_vgg11", scale=0.5)
    result = fcnlab.explain(checkpoint, picture(50, 80), max_side=40)
    assert result.source_size == (50, 80)
    assert result.mask.shape == result.image.shape[:2] == (12, 20)  # 25 x 40, then x0.5
    assert fcnlab.explain(checkpoint, picture(50, 80), max_side=None).mask.shape == (25, 40)


def test_a_non_image_file_is_refused_in_one_sentence(fcn_file, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    with pytest.raises(FcnlabError, match=r"image file .*notes.png cannot be read"):
        fcnlab.explain(fcn_file, notes)
    with pytest.raises(FcnlabError, match="does not exist"):
        fcnlab.explain(fcn_file, tmp_path / "missing.png")


def test_a_damaged_checkpoint_is_refused_in_one_sentence(fcn_file, image_file, tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(fcn_file.read_bytes()[:2000])
    with pytest.raises(FcnlabError, match="truncated or not a PyTorch file"):
        fcnlab.explain(damaged, image_file)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(FcnlabError, match="not an fcnlab checkpoint"):
        fcnlab.explain(plain, image_file)


def test_exported_models_and_unknown_heads_are_refused(tmp_path, image_file):
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"onnx")
    with pytest.raises(FcnlabError, match=r"explain needs an fcnlab checkpoint \(\.pt\)"):
        fcnlab.explain(exported, image_file)

    class OtherHead(Head):
        num_classes = 3

    model = tiny_model("fcn8s_vgg11")
    model.head = OtherHead()
    card = ModelCard.from_checkpoint(make_checkpoint(tiny_model("fcn8s_vgg11"), INFO, config={}))
    with pytest.raises(FcnlabError, match="has a OtherHead head, which it cannot take apart"):
        Explainer(model, card)
    with pytest.raises(FcnlabError, match="max_side must be at least 1"):
        Explainer(tiny_model("fcn8s_vgg11"), card).explain(picture(8, 8), max_side=0)


def test_an_unwritable_out_is_refused(one_thread, fcn_file, image_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FcnlabError, match="cannot write to"):
        fcnlab.explain(fcn_file, image_file, out=blocker / "sub")


def test_cli_writes_the_page_and_reports(one_thread, fcn_file, image_file, tmp_path):
    out = tmp_path / "cli"
    result = runner.invoke(app, ["explain", str(fcn_file), str(image_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "fcn8s_vgg11 on street.png (53 x 37)" in result.output
    assert "3 FCN stages add up to the logits" in result.output
    assert (out / "index.html").is_file() and (out / "fcn_stages.png").is_file()


def test_cli_errors_are_one_line_with_exit_code_2(fcn_file, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    for args, message in [
        ([str(fcn_file), str(notes)], "cannot be read"),
        ([str(notes), str(notes)], "truncated or not a PyTorch file"),
        ([str(fcn_file), str(notes), "--max-side", "-1"], "--max-side must be at least 0"),
    ]:
        result = runner.invoke(app, ["explain", *args, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error:") and message in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output
