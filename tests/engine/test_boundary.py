"""Boundary F1 (BF) on hand-built masks with answers worked out by hand, and `fcnlab eval`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fcnlab.data.datasets.synthetic import synthetic_info
from fcnlab.engine.boundary import (
    BoundaryF1,
    boundaries,
    check_tolerance,
    dilate,
    image_class_f1,
)
from fcnlab.engine.checkpoint import make_checkpoint, save_checkpoint
from fcnlab.engine.metrics import compute_metrics
from fcnlab.engine.report import write_report
from fcnlab.errors import FcnlabError
from tests.checkpoints import tiny_model

IGNORE = 255
# 30 x 40 images have a diagonal of exactly 50 pixels: tolerance 0.1 is 5 px, 0.04 is 2 px.
H, W = 30, 40


def stripes(*edges: int, classes: tuple[int, ...] = (0, 1, 0)) -> torch.Tensor:
    """An H x W map of vertical stripes: ``classes[i]`` from ``edges[i-1]`` to ``edges[i]``."""
    out = torch.empty(H, W, dtype=torch.int64)
    bounds = (0, *edges, W)
    for cls, lo, hi in zip(classes, bounds[:-1], bounds[1:], strict=True):
        out[:, lo:hi] = cls
    return out


def scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 2, **kwargs) -> dict:
    metric = BoundaryF1(num_classes, IGNORE, **kwargs)
    metric.update(pred, target)
    return metric.compute()


def test_identical_masks_score_one() -> None:
    target = stripes(10, 30)
    result = scores(target.clone(), target)
    assert result["per_class"] == [1.0, 1.0]
    assert result["bf"] == result["bf_image"] == 1.0


def test_shift_within_tolerance_scores_one_and_beyond_it_half() -> None:
    # Class 1 is the stripe [10, 30) in the labels and [10, 34) in the prediction: the left
    # edge matches and the right edge moved by 4 px. True boundaries: class 0 at columns 9
    # and 30, class 1 at 10 and 29 (30 pixels each); predicted: 9 and 34, 10 and 33.
    target, pred = stripes(10, 30), stripes(10, 34)
    # Within 5 px every boundary pixel has a partner 0 or 4 px away: P = R = 1.
    assert scores(pred, target, tolerance=0.1)["per_class"] == [1.0, 1.0]
    # Within 2 px only the left edge matches: P = R = 30/60 = 1/2 for both classes, F1 = 1/2.
    assert scores(pred, target, tolerance=0.04)["per_class"] == [0.5, 0.5]


def test_spurious_blob_lowers_precision_only() -> None:
    # As above with 2 px, plus a predicted 4x4 square of class 1 at rows 10-13, columns 2-5
    # in the class-0 region, 3+ px from any true boundary. It adds 12 class-1 boundary pixels
    # (its ring: 16 - 2x2 inside) and 16 class-0 ones (the 4-neighbours around it), all
    # misses. Class 1: P = 30/72 = 5/12, R = 30/60 = 1/2, F1 = 2PR/(P+R) = (5/12)/(11/12)
    # = 5/11. Class 0: P = 30/76 = 15/38, R = 1/2, F1 = (15/38)/(34/38) = 15/34.
    target, pred = stripes(10, 30), stripes(10, 34)
    pred[10:14, 2:6] = 1
    result = scores(pred, target, tolerance=0.04)
    assert result["per_class"] == pytest.approx([15 / 34, 5 / 11], abs=1e-12)
    assert result["bf"] == pytest.approx((15 / 34 + 5 / 11) / 2, abs=1e-12)


def test_labelled_but_never_predicted_is_zero_and_absent_classes_are_left_out() -> None:
    # Labels: class 0 left, class 2 right. Prediction: class 0 left, class 1 right. Class 0
    # matches (1), class 2 is never predicted (0), class 1 is only predicted (not scored:
    # None) and class 3 appears nowhere (None); the mean is over classes 0 and 2.
    target = stripes(20, classes=(0, 2))
    pred = stripes(20, classes=(0, 1))
    result = scores(pred, target, num_classes=4)
    assert result["per_class"] == [1.0, None, 0.0, None]
    assert result["bf"] == 0.5
    assert result["images"] == 1


def test_per_class_average_is_over_images_labelled_with_the_class() -> None:
    # Image 1 is perfect for classes 0 and 1; image 2 labels only class 0 and 2, misses 2.
    first = stripes(20, classes=(0, 1))
    second = stripes(20, classes=(0, 2))
    target = torch.stack([first, second])
    pred = torch.stack([first, stripes(20, classes=(0, 1))])
    result = scores(pred, target, num_classes=3)
    # class 0: (1 + 1) / 2; class 1: image 1 only (predicted-only in image 2); class 2: 0.
    assert result["per_class"] == [1.0, 1.0, 0.0]
    assert result["bf"] == pytest.approx(2 / 3)
    # SegNet's image average: image 1 (1 + 1) / 2 = 1, image 2 (1 + 0) / 2 = 0.5.
    assert result["bf_image"] == pytest.approx(0.75)


def test_ignored_pixels_make_no_boundary() -> None:
    # A column of ignored pixels between class 0 and class 1: neither side has a boundary.
    target = stripes(10, 11, classes=(0, IGNORE, 1))
    assert not boundaries(target, target != IGNORE).any()
    # The prediction covers the ignored column with class 0 or 1: masked, still no boundary,
    # and the masks agree on every labelled pixel, so both classes score 1.
    for pred in (stripes(11, classes=(0, 1)), stripes(10, classes=(0, 1))):
        assert scores(pred, target)["per_class"] == [1.0, 1.0]
    # An ignored block inside class 0 is not a boundary either.
    target = torch.zeros(H, W, dtype=torch.int64)
    target[10:20, 10:20] = IGNORE
    assert not boundaries(target, target != IGNORE).any()
    pred = torch.zeros_like(target)
    pred[12:18, 12:18] = 1  # inside the ignored block: not counted
    assert scores(pred, target)["per_class"] == [1.0, None]


def test_no_boundary_anywhere_scores_the_masks_agreement() -> None:
    # Labels all class 0 but split by ignored column 20; the prediction gives the right part
    # class 1. No map has a boundary, the class-0 masks differ: class 0 scores 0.
    target = stripes(20, 21, classes=(0, IGNORE, 0))
    pred = stripes(20, classes=(0, 1))
    assert scores(pred, target)["per_class"] == [0.0, None]


def test_dilation_is_an_exact_disk() -> None:
    mask = torch.zeros(9, 9, dtype=torch.bool)
    mask[4, 4] = True
    # Radius 2: the 13 offsets with dx^2 + dy^2 <= 4 (a square would cover 25).
    assert int(dilate(mask, 2.0).sum()) == 13
    assert int(dilate(mask, 0.5).sum()) == 1
    ys, xs = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    disk = (ys - 4) ** 2 + (xs - 4) ** 2 <= 3.3**2
    assert torch.equal(dilate(mask, 3.3), disk)


def brute_force_f1(pred: torch.Tensor, target: torch.Tensor, num_classes: int, tol: float):
    """Per-class F1 of one image by explicit neighbour loops and pairwise distances."""
    height, width = target.shape
    radius = tol * math.hypot(height, width)
    valid = target != IGNORE

    def edges(labels: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(valid)
        for y in range(height):
            for x in range(width):
                for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                    if 0 <= yy < height and 0 <= xx < width and valid[y, x] and valid[yy, xx]:
                        out[y, x] |= bool(labels[yy, xx] != labels[y, x])
        return out

    true_edges, pred_edges = edges(target), edges(pred)
    result = {}
    for c in range(num_classes):
        if not (valid & (target == c)).any():
            continue
        gt_pts = (true_edges & (target == c)).nonzero().double()
        pred_pts = (pred_edges & (pred == c)).nonzero().double()
        if len(gt_pts) == 0 and len(pred_pts) == 0:
            same = torch.equal(valid & (target == c), valid & (pred == c))
            result[c] = float(same)
        elif len(gt_pts) == 0 or len(pred_pts) == 0:
            result[c] = 0.0
        else:
            dist = torch.cdist(pred_pts, gt_pts)
            p = (dist.min(1).values <= radius).double().mean().item()
            r = (dist.min(0).values <= radius).double().mean().item()
            result[c] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return result


def random_batch(seed: int, n: int = 4, num_classes: int = 5):
    gen = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, num_classes, (n, 6, 7), generator=gen)
    target = blocks.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :22, :26].clone()
    target[torch.rand(target.shape, generator=gen) < 0.05] = IGNORE
    pred = torch.roll(target, shifts=(1, 3), dims=(1, 2))
    pred[pred == IGNORE] = 1
    noise = torch.rand(pred.shape, generator=gen) < 0.05
    pred[noise] = torch.randint(0, num_classes, (int(noise.sum()),), generator=gen)
    return pred, target


@pytest.mark.parametrize("tol", [0.02, 0.06, 0.15])
def test_matches_a_brute_force_reference(tol: float) -> None:
    pred, target = random_batch(seed=int(tol * 100))
    f1, labelled = image_class_f1(pred, target, 5, IGNORE, tol)
    for i in range(len(target)):
        expected = brute_force_f1(pred[i], target[i], 5, tol)
        assert sorted(expected) == labelled[i].nonzero().flatten().tolist()
        for c, value in expected.items():
            assert f1[i, c].item() == pytest.approx(value, abs=1e-12)


def test_batch_and_one_by_one_agree() -> None:
    pred, target = random_batch(seed=7, n=6)
    together = BoundaryF1(5, IGNORE)
    together.update(pred, target)
    alone = BoundaryF1(5, IGNORE)
    for p, t in zip(pred, target, strict=True):
        alone.update(p, t)  # H x W maps are accepted as one image
    a, b = together.compute(), alone.compute()
    assert a["per_class"] == pytest.approx(b["per_class"], abs=1e-12)
    assert a["bf"] == pytest.approx(b["bf"], abs=1e-12)
    assert a["bf_image"] == pytest.approx(b["bf_image"], abs=1e-12)
    assert a["images"] == b["images"] == 6
    together.reset()
    with pytest.raises(FcnlabError, match="no labelled pixel"):
        together.compute()


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.5, -0.01, float("nan"), float("inf"), True, "x"])
def test_bad_tolerance_is_refused(bad) -> None:
    with pytest.raises(FcnlabError, match="tolerance"):
        BoundaryF1(3, IGNORE, tolerance=bad)
    with pytest.raises(FcnlabError, match="tolerance"):
        check_tolerance(bad)


def test_bad_input_is_refused() -> None:
    metric = BoundaryF1(3, IGNORE)
    target = torch.zeros(2, 4, 4, dtype=torch.int64)
    with pytest.raises(FcnlabError, match="same shape"):
        metric.update(torch.zeros(2, 3, 4, 4, dtype=torch.int64), target)
    with pytest.raises(FcnlabError, match="integer class indices"):
        metric.update(target.float(), target)
    with pytest.raises(FcnlabError, match=r"target holds values \[7\]"):
        metric.update(target, torch.full_like(target, 7))
    with pytest.raises(FcnlabError, match=r"pred holds values \[3\]"):
        metric.update(torch.full_like(target, 3), target)


def test_report_shows_bf(tmp_path) -> None:
    names = ["road", "car"]
    evaluation = {
        **compute_metrics(np.array([[5, 1], [0, 4]]), names),
        "bf": 0.625,
        "bf_image": 0.5,
        "per_class_bf": {"road": 0.75, "car": 0.5},
    }
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "boundary F1 (BF)" in md and "62.50" in md
    assert "BF %" in md and "75.00" in md


def test_cli_eval_boundary_writes_bf(tmp_path) -> None:
    from fcnlab.cli import app  # the CLI imports every command's module

    runner = CliRunner()
    options = {"num_classes": 3, "length": 2, "size": [32, 40]}
    config = {"data": {"name": "synthetic", "options": options}}
    info = synthetic_info(3)
    checkpoint = save_checkpoint(
        make_checkpoint(tiny_model(), info, config=config), tmp_path / "m.pt"
    )
    out = tmp_path / "eval.json"
    args = ["eval", str(checkpoint), "--precision", "fp32", "--json", str(out)]
    result = runner.invoke(app, [*args, "--boundary", "--boundary-tolerance", "0.02"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert 0 <= metrics["bf"] <= 1 and metrics["bf_tolerance"] == 0.02
    assert list(metrics["per_class_bf"]) == list(info.classes)
    assert "Boundary F1" in result.output

    result = runner.invoke(app, args)  # without --boundary: no BF
    assert result.exit_code == 0, result.output
    assert "bf" not in json.loads(out.read_text())

    result = runner.invoke(app, [*args, "--boundary", "--boundary-tolerance", "2"])
    assert result.exit_code == 2
    assert "--boundary-tolerance is a fraction of the image diagonal" in result.output
