"""ConfusionMatrix and compute_metrics against a matrix worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
from rich.console import Console

from fcnlab.engine.metrics import (
    ConfusionMatrix,
    compute_metrics,
    format_metrics,
    format_summary,
)
from fcnlab.errors import FcnlabError

NAMES = ["road", "car", "tree", "sky"]
IGNORE = 255

# (label, prediction) pairs. "tree" (2) is in neither labels nor predictions except on an
# ignored pixel, which must not count; "sky" (3) is predicted once but never labelled.
PAIRS = [(0, 0)] * 5 + [(0, 3)] + [(1, 1)] * 2 + [(1, 0)] * 2 + [(IGNORE, 2), (IGNORE, 3)]
EXPECTED = [[5, 0, 0, 1], [2, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
# rows t = (6, 4, 0, 0), columns p = (7, 2, 0, 1), 10 counted pixels, diagonal (5, 2, 0, 0):
# IoU = 5/(6+7-5), 2/(4+2-2), absent, 0/(0+1-0); acc = 5/6, 2/4, None, None.
IOU = [5 / 8, 1 / 2, None, 0.0]
ACC = [5 / 6, 1 / 2, None, None]


def example() -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs as an N x H x W batch (2 x 2 x 3)."""
    target, pred = (torch.tensor(col).reshape(2, 2, 3) for col in zip(*PAIRS, strict=True))
    return pred, target


def test_hand_computed_example() -> None:
    pred, target = example()
    cm = ConfusionMatrix(4, IGNORE)
    cm.update(pred, target)
    assert cm.matrix.dtype == torch.int64
    assert cm.matrix.tolist() == EXPECTED
    m = cm.compute(NAMES)
    assert m["pixel_acc"] == pytest.approx(7 / 10)
    assert m["mean_acc"] == pytest.approx((5 / 6 + 1 / 2) / 2)  # classes with label pixels
    assert m["miou"] == pytest.approx((5 / 8 + 1 / 2 + 0.0) / 3)  # sky counts, tree does not
    assert m["fwiou"] == pytest.approx((6 * 5 / 8 + 4 * 1 / 2) / 10)
    assert m["confusion"] == EXPECTED
    expected = zip(NAMES, IOU, ACC, [6, 4, 0, 0], strict=True)
    for c, (name, iou, acc, pixels) in zip(m["per_class"], expected, strict=True):
        assert c["name"] == name
        assert c["pixels"] == pixels
        assert c["iou"] == (None if iou is None else pytest.approx(iou))
        assert c["acc"] == (None if acc is None else pytest.approx(acc))
    assert [c["present"] for c in m["per_class"]] == [True, True, False, True]
    assert json.loads(json.dumps(m)) == m  # plain JSON types only


def test_numpy_matrix_and_default_names() -> None:
    m = compute_metrics(np.array(EXPECTED), None)
    assert m["miou"] == pytest.approx(0.375)
    assert [c["name"] for c in m["per_class"]] == ["0", "1", "2", "3"]


def test_perfect_prediction_scores_one() -> None:
    target = torch.randint(0, 5, (3, 17, 19), generator=torch.Generator().manual_seed(0))
    target[0, :4] = IGNORE
    cm = ConfusionMatrix(5, IGNORE)
    cm.update(target.clone(), target)
    m = cm.compute()
    assert (m["pixel_acc"], m["mean_acc"], m["miou"], m["fwiou"]) == (1.0, 1.0, 1.0, 1.0)


def test_batches_add_up_to_one_update() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 6, (6, 9, 11), generator=g)
    target[target == 5] = IGNORE
    pred = torch.randint(0, 5, (6, 9, 11), generator=g, dtype=torch.int32)
    once = ConfusionMatrix(5, IGNORE)
    once.update(pred, target)
    batched = ConfusionMatrix(5, IGNORE)
    for p, t in zip(pred.split(2), target.split(2), strict=True):
        batched.update(p, t)
    assert torch.equal(once.matrix, batched.matrix)
    assert int(once.matrix.sum()) == int((target != IGNORE).sum())
    once.reset()
    assert int(once.matrix.sum()) == 0


@pytest.mark.parametrize("bad", [4, -1, 254])
def test_out_of_range_label_raises(bad: int) -> None:
    pred, target = example()
    target[0, 0, 0] = bad
    with pytest.raises(FcnlabError, match=rf"target holds values \[{bad}\] outside \[0, 4\)"):
        ConfusionMatrix(4, IGNORE).update(pred, target)


def test_ignore_value_without_ignore_index_raises() -> None:
    pred, target = example()
    with pytest.raises(FcnlabError, match=r"\[255\] outside \[0, 4\)"):
        ConfusionMatrix(4, None).update(pred, target)


def test_ignore_index_inside_the_class_range_is_excluded() -> None:
    cm = ConfusionMatrix(3, ignore_index=0)
    cm.update(torch.tensor([[0, 1, 2, 2]]), torch.tensor([[0, 1, 2, 0]]))
    assert cm.matrix.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_bad_inputs_raise() -> None:
    cm = ConfusionMatrix(4, IGNORE)
    pred, target = example()
    with pytest.raises(FcnlabError, match="pred holds values"):
        cm.update(pred + 4, target)
    with pytest.raises(FcnlabError, match="same shape"):
        cm.update(torch.zeros(2, 4, 2, 3), target)
    with pytest.raises(FcnlabError, match="integer class indices"):
        cm.update(pred.float(), target)
    with pytest.raises(FcnlabError, match="empty"):
        compute_metrics(torch.zeros(3, 3, dtype=torch.int64), None)
    with pytest.raises(FcnlabError, match="2 class names for a 4-class"):
        compute_metrics(np.array(EXPECTED), ["a", "b"])


def test_all_reduce_is_a_noop_without_a_process_group() -> None:
    assert not (dist.is_available() and dist.is_initialized())
    pred, target = example()
    cm = ConfusionMatrix(4, IGNORE)
    cm.update(pred, target)
    cm.all_reduce()
    assert cm.matrix.tolist() == EXPECTED


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_all_reduce_in_a_one_process_group(tmp_path) -> None:
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        pred, target = example()
        cm = ConfusionMatrix(4, IGNORE)
        cm.update(pred, target)
        cm.all_reduce()
        assert cm.matrix.tolist() == EXPECTED
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_matrix_follows_the_data_to_the_gpu() -> None:
    pred, target = example()
    cm = ConfusionMatrix(4, IGNORE)
    cm.update(pred.cuda(), target.cuda())
    assert cm.matrix.is_cuda
    assert cm.matrix.tolist() == EXPECTED


def test_format_metrics_lists_classes_and_summary() -> None:
    console = Console(record=True, width=120)
    console.print(format_metrics(compute_metrics(np.array(EXPECTED), NAMES)))
    text = console.export_text()
    for name in NAMES:
        assert name in text
    assert "absent" in text
    assert "62.50" in text  # road IoU
    assert "37.50" in text  # mIoU
    assert "66.67" in text  # mean accuracy
    assert "57.50" in text  # fwIoU
    assert "70.00" in text  # pixel accuracy


def test_format_summary_is_one_line() -> None:
    line = format_summary(compute_metrics(np.array(EXPECTED), NAMES))
    assert line == "pixel acc 70.00%  mean acc 66.67%  mIoU 37.50%  fwIoU 57.50%"


def test_predicted_classes_equals_argmax_over_channels():
    from fcnlab.masks import predicted_classes

    scores = torch.randn(2, 7, 13, 17)
    scores[0, 3, 0, 0] = scores[0, 5, 0, 0] = 99.0  # a tie: the first index wins, as argmax
    got = predicted_classes(scores)
    assert torch.equal(got, scores.argmax(1))
    assert got[0, 0, 0] == 3
