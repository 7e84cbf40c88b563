"""Sample strips, colour helpers and the HTML/Markdown run report, on fake run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fcnlab.engine.metrics import compute_metrics
from fcnlab.engine.report import save_samples, write_report
from fcnlab.engine.report_render import Table, Text, render_html, render_markdown
from fcnlab.errors import FcnlabError
from fcnlab.masks import colorize, overlay

NAMES = ["road", "car", "tree", "sky"]
PALETTE = [(128, 64, 128), (64, 0, 128), (128, 128, 0), (128, 128, 128)]
IGNORE = 255
MATRIX = np.array([[5, 0, 0, 1], [2, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_sample(rng: np.random.Generator, h: int = 12, w: int = 16):
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = rng.integers(0, 4, (h, w))
    label[0] = IGNORE
    pred = rng.integers(0, 4, (h, w))
    return image, pred, label


def write_history(run_dir: Path, lines: list[dict], tail: str = "") -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (run_dir / "metrics.jsonl").write_text(text + tail)


HISTORY = [
    {"step": 10, "epoch": 0, "train_loss": 2.1, "lr": 0.01, "images_per_s": 40.0},
    {"step": 20, "epoch": 1, "train_loss": 1.4, "lr": 0.008, "images_per_s": 42.5},
    {"step": 20, "epoch": 1, "val_loss": 1.6, "val_miou": 0.31, "val_pixel_acc": 0.7},
    {"step": 30, "epoch": 2, "train_loss": 0.9, "lr": 0.005},
    {"step": 30, "epoch": 2, "val_loss": 1.2, "val_miou": 0.375, "val_pixel_acc": 0.7},
]


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    config = {
        "model": {"name": "fcn8s_vgg16"},
        "data": {"name": "synthetic"},
        "train": {"steps": 30},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    write_history(tmp_path, HISTORY)
    evaluation = {**compute_metrics(MATRIX, NAMES), "checkpoint": "best.pt", "split": "val"}
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    rng = np.random.default_rng(0)
    images, preds, labels = zip(*(random_sample(rng) for _ in range(2)), strict=True)
    save_samples(tmp_path, images, preds, labels, PALETTE, IGNORE)
    return tmp_path


def referenced(text: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, text))


def assert_valid_png(path: Path) -> None:
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()


def test_full_report_references_every_figure_and_sample(full_run: Path) -> None:
    html_path = write_report(full_run)
    assert html_path == full_run / "report.html"
    html = html_path.read_text()
    md = (full_run / "report.md").read_text()
    pngs = {p.relative_to(full_run).as_posix() for p in full_run.glob("*/*.png")}
    expected_plots = {"loss", "val_metrics", "class_iou", "confusion"}
    assert {p[len("plots/") : -4] for p in pngs if p.startswith("plots/")} == expected_plots
    assert {p for p in pngs if p.startswith("samples/")} == {
        "samples/sample_00.png",
        "samples/sample_01.png",
    }
    assert referenced(html, r'<img src="([^"]+)"') == pngs
    assert referenced(md, r"!\[[^\]]*\]\(([^)]+)\)") == pngs
    for png in pngs:
        assert_valid_png(full_run / png)
    for text in (html, md):
        for name in NAMES:
            assert name in text
        assert "37.50" in text  # mIoU of MATRIX, in %
        assert "57.50" in text  # fwIoU
        assert "fcn8s_vgg16" in text
        assert "synthetic" in text
        assert "30 of 30" in text  # steps run of planned
        assert "best.pt" in text
    assert html.startswith("<!DOCTYPE html>")
    assert "http" not in html  # nothing fetched from the network


def test_report_from_metrics_only(tmp_path: Path) -> None:
    # A run killed mid-write leaves a partial last line: skipped and counted, not fatal.
    write_history(tmp_path, HISTORY[:2], tail='{"step": 30, "train_')
    html = write_report(tmp_path).read_text()
    md = (tmp_path / "report.md").read_text()
    assert referenced(html, r'<img src="([^"]+)"') == {"plots/loss.png"}
    assert referenced(md, r"!\[[^\]]*\]\(([^)]+)\)") == {"plots/loss.png"}
    assert_valid_png(tmp_path / "plots/loss.png")
    assert "No validation results yet." in html
    assert "unreadable metrics.jsonl lines" in html


def test_report_falls_back_to_last_validation(tmp_path: Path) -> None:
    write_history(tmp_path, HISTORY)
    html = write_report(tmp_path).read_text()
    assert "No eval.json yet; last validation, at step 30." in html
    assert "37.50" in html
    assert "plots/val_metrics.png" in html


def test_report_of_a_run_without_results_yet(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("experiment: fresh\n")
    html = write_report(tmp_path).read_text()
    assert "No validation results yet." in html
    assert (tmp_path / "report.md").is_file()
    with pytest.raises(FcnlabError, match="does not exist"):
        write_report(tmp_path / "missing")


def test_a_folder_without_a_run_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(FcnlabError, match="holds no run"):
        write_report(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_colorize_maps_indices_to_palette_and_ignore_to_black() -> None:
    mask = np.array([[0, 1, 2], [3, IGNORE, 0]])
    out = colorize(mask, PALETTE, IGNORE)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert [tuple(px) for px in out.reshape(-1, 3)] == [
        PALETTE[0],
        PALETTE[1],
        PALETTE[2],
        PALETTE[3],
        (0, 0, 0),
        PALETTE[0],
    ]
    with pytest.raises(FcnlabError, match=r"values \[7\] that have no palette colour"):
        colorize(np.array([[7, 0]]), PALETTE, IGNORE)


def test_overlay_blends_and_leaves_ignore_pixels() -> None:
    image = np.full((1, 2, 3), 100, dtype=np.uint8)
    out = overlay(image, np.array([[1, IGNORE]]), PALETTE, IGNORE, alpha=0.5)
    assert tuple(out[0, 0]) == (82, 50, 114)  # halfway between 100 and (64, 0, 128)
    assert tuple(out[0, 1]) == (100, 100, 100)
    with pytest.raises(FcnlabError, match="nearest-neighbour"):
        overlay(image, np.zeros((2, 2), dtype=int), PALETTE, IGNORE)


def test_save_samples_writes_strips_and_replaces_old_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image, pred, label = random_sample(rng, 10, 7)
    paths = save_samples(tmp_path, [image] * 3, [pred] * 3, [label] * 3, PALETTE, IGNORE)
    assert [p.name for p in paths] == ["sample_00.png", "sample_01.png", "sample_02.png"]
    paths = save_samples(tmp_path, [image], [pred], [label], PALETTE, IGNORE)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["sample_00.png"]
    strip = np.asarray(Image.open(paths[0]))
    assert strip.shape == (10, 3 * 7 + 2 * 4, 3)
    assert np.array_equal(strip[:, :7], image)
    assert np.array_equal(strip[:, -7:], overlay(image, pred, PALETTE, None))
    with pytest.raises(FcnlabError, match="as many images"):
        save_samples(tmp_path, [image], [], [label], PALETTE, IGNORE)


def test_renderers_escape_text() -> None:
    blocks = [Table(["class", "IoU %"], [["a<b>|c", "1.00"]], "lr"), Text("x & y")]
    html = render_html("t", blocks)
    assert "a&lt;b&gt;|c" in html and "x &amp; y" in html
    assert '<td class="r">1.00</td>' in html
    md = render_markdown("t", blocks)
    assert r"| a<b>\|c | 1.00 |" in md
    assert "|:---|---:|" in md
