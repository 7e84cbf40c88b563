"""fcnlab predict on files: sizes, odd image kinds, outputs, bad inputs."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fcnlab.cli import app
from fcnlab.errors import FcnlabError
from fcnlab.infer.files import Outputs, gather_inputs, predict_files
from tests.checkpoints import INFO

runner = CliRunner()


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def exif_rotated_jpeg(path, h=20, w=36):
    """A JPEG stored w x h whose EXIF orientation 6 says: rotate to show h... as w x h."""
    image = Image.fromarray(rgb(h, w))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(path, exif=exif)
    return (w, h)  # displayed height, width


def make_inputs(folder):
    """Odd sizes and every image kind; returns {stem: (height, width)} as displayed."""
    folder.mkdir()
    sizes = {}
    Image.fromarray(rgb(37, 53)).save(folder / "odd.png")
    sizes["odd"] = (37, 53)
    Image.fromarray(rgb(1, 7)[..., 0]).save(folder / "gray.png")
    sizes["gray"] = (1, 7)
    Image.fromarray(np.dstack([rgb(29, 17), rgb(29, 17)[..., :1]]), "RGBA").save(
        folder / "rgba.png"
    )
    sizes["rgba"] = (29, 17)
    deep = (rgb(23, 31)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    sizes["deep16"] = (23, 31)
    sizes["rotated"] = exif_rotated_jpeg(folder / "rotated.jpg")
    return sizes


def test_masks_have_the_input_size_and_valid_classes(tmp_path, predictor):
    sizes = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = predict_files(
        predictor, gather_inputs([tmp_path / "in"]), out, Outputs(True, True, True)
    )
    assert not summary.failed
    for stem, (h, w) in sizes.items():
        mask = Image.open(out / f"{stem}.png")
        assert mask.mode == "P"
        assert (mask.height, mask.width) == (h, w), stem
        values = np.asarray(mask)
        assert values.max() < len(INFO.classes)
        palette = mask.getpalette()[: 3 * len(INFO.palette)]
        assert palette == [v for colour in INFO.palette for v in colour]
        assert Image.open(out / f"{stem}.overlay.jpg").size == (w, h)
        probs = np.load(out / f"{stem}.probs.npy")
        assert probs.shape == (len(INFO.classes), h, w)
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1, atol=2e-2)
        assert (probs.argmax(0) == values).mean() > 0.99
        info = json.loads((out / f"{stem}.json").read_text())
        assert (info["height"], info["width"]) == (h, w)
        assert set(info["fractions"]) == set(INFO.classes)
        assert sum(info["fractions"].values()) == pytest.approx(1.0)


def test_batches_give_the_same_masks_as_single_images(tmp_path, predictor):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rgb(40, 44, seed=i)).save(folder / f"im{i}.png")
    paths = gather_inputs([folder])
    predict_files(predictor, paths, tmp_path / "one", batch_size=1)
    predict_files(predictor, paths, tmp_path / "three", batch_size=3)
    for i in range(5):
        one = np.asarray(Image.open(tmp_path / "one" / f"im{i}.png"))
        three = np.asarray(Image.open(tmp_path / "three" / f"im{i}.png"))
        assert (one == three).mean() > 0.999


def test_inputs_from_globs_and_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.jpg", "a/b/y.png", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in gather_inputs([tmp_path / "a"])] == ["y.png", "x.jpg"]
    assert [p.name for p in gather_inputs([str(tmp_path / "a" / "*.jpg")])] == ["x.jpg"]
    with pytest.raises(FcnlabError, match="does not exist"):
        gather_inputs([tmp_path / "nope.png"])
    with pytest.raises(FcnlabError, match="no file matches"):
        gather_inputs([str(tmp_path / "*.gif")])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.png").write_bytes(b"")
    with pytest.raises(FcnlabError, match=r"both be written as x\.png"):
        gather_inputs([tmp_path / "a", tmp_path / "c"])


def test_cli_predict_skips_a_corrupt_file_and_exits_nonzero(tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rgb(30, 40)).save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(model_file), str(folder), "--out", str(out)])
    assert result.exit_code == 1
    assert "broken.jpg" in result.output
    assert (out / "good.png").exists() and not (out / "broken.png").exists()
    assert "1 of 2 images" in result.output


def test_cli_predict_with_tta_and_tiles(tmp_path, model_file):
    Image.fromarray(rgb(70, 90)).save(tmp_path / "big.png")
    out = tmp_path / "out"
    args = ["predict", str(model_file), str(tmp_path / "big.png"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--tta", "flip,scales=0.75,1", "--tile", "32x48"])
    assert result.exit_code == 0, result.output
    assert Image.open(out / "big.png").size == (90, 70)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.pt"], "does not exist"),
        (["CKPT", "--tta", "rotate"], "--tta"),
        (["CKPT", "--tile", "0x5"], "size must look like"),
        (["CKPT", "--backend", "turbo"], "unknown backend"),
        (["STATE"], "not an fcnlab checkpoint"),
        (["TEXT"], "not a PyTorch file"),
        (["CKPT", "--out", "FILE"], "cannot write"),
    ],
)
def test_cli_predict_user_errors(tmp_path, model_file, args, message):
    import torch

    Image.fromarray(rgb(8, 8)).save(tmp_path / "im.png")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state.pt")
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "file").write_text("")
    names = {
        "CKPT": str(model_file),
        "STATE": str(tmp_path / "state.pt"),
        "TEXT": str(tmp_path / "text.pt"),
        "FILE": str(tmp_path / "file" / "sub"),
        "missing.pt": str(tmp_path / "missing.pt"),
    }
    model, *rest = (names.get(a, a) for a in args)
    out = [] if "--out" in rest else ["--out", str(tmp_path / "o")]
    result = runner.invoke(app, ["predict", model, str(tmp_path / "im.png"), *out, *rest])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
