"""Gradient accumulation in the real training loop: k micro-batches versus one k-times batch.

Each case runs ``fcnlab.engine.train.train`` for one SGD step (weight decay 0, so the first
step is ``w1 = w0 - lr * grad`` whatever the momentum) and reads the gradient the loop
applied back from ``last.pt``: ``grad = (w0 - w1) / lr``. The lr is large so that this
difference keeps float32 precision (one step; nothing is validated).

The model is FCN-32s on VGG11 with fc_width 16: it has no BatchNorm (whose batch statistics
would make k micro-batches differ from one batch by construction). Its only randomness in
training mode is fc6/fc7's dropout, whose masks no two runs share; the tests set it to p=0.

Each micro-batch's loss is the mean over its own valid (non-ignored) pixels; the loop weighs
it by its share of the window's valid pixels (``engine.train._Window``), so the accumulated
gradient is the mean over all the window's pixels, as one k-times batch's is: tested with
equal valid-pixel counts and with clearly unequal ones (random downscaling plus ignore padding).

Micro-batches hold 2 images, not 1: on these images PyTorch's float32 CPU kernels at batch
size 1 put the first conv's weight gradient about 1% off its float64 value (batch 2 or 4:
1e-6), float noise that has nothing to do with accumulation.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fcnlab.engine.setup as engine_setup
import fcnlab.engine.train as engine_train
from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.engine.checkpoint import load_checkpoint
from fcnlab.engine.losses import SegmentationLoss
from fcnlab.engine.train import train

LR = 2.0
IGNORE = 255
# The unpatched functions: each Recorder wraps these, never a previous Recorder's wrapper.
BUILD_MODEL, BATCHES = engine_setup._model, engine_train.batches


def one_step_config(batch_size: int, accum: int, *overrides: str) -> ExperimentConfig:
    return apply_overrides(
        ExperimentConfig(),
        [
            "model.name=fcn32s_vgg11",
            "model.fc_width=16",
            "data.options={length: 8, size: [32, 48]}",
            "data.crop_size=[32, 48]",
            "data.scale_range=[1.0, 1.0]",
            "data.hflip=false",
            f"data.batch_size={batch_size}",
            "data.workers=0",
            "train.optimizer=sgd",
            f"train.lr={LR}",
            "train.momentum=0.9",
            "train.weight_decay=0",
            f"train.grad_accum={accum}",
            "train.precision=fp32",
            "train.device=cpu",
            "train.deterministic=true",
            "train.steps=2",  # stopped after step 1: no validation, no report
            "train.val_every=1000",
            "train.report_samples=0",
            *overrides,
        ],
    )


class Recorder:
    """What one run saw: its initial model (dropout off) and every micro-batch."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.initial: nn.Module | None = None
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

        def model(*args, **kwargs):
            net = BUILD_MODEL(*args, **kwargs)
            dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
            assert dropouts, "the model's dropout moved; keep it off here"
            for m in dropouts:
                m.p = 0.0
            assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
            self.initial = copy.deepcopy(net)
            return net

        def batches(loader):
            for images, masks in BATCHES(loader):
                self.batches.append((images.clone(), masks.clone()))
                yield images, masks

        monkeypatch.setattr(engine_setup, "_model", model)
        monkeypatch.setattr(engine_train, "batches", batches)

    def applied_gradient(self, run_dir) -> dict[str, torch.Tensor]:
        """``(w0 - w1) / lr`` per parameter: the gradient the single SGD step applied."""
        state = load_checkpoint(run_dir / "last.pt")
        assert state["train_state"]["step"] == 1
        after = state["state_dict"]
        return {n: (p.detach() - after[n]) / LR for n, p in self.initial.named_parameters()}

    def reference_gradient(self, groups: list[list[int]]) -> dict[str, torch.Tensor]:
        """The mean over ``groups`` of each group's mean-loss gradient, computed here."""
        net = copy.deepcopy(self.initial).train()
        loss_fn = SegmentationLoss(IGNORE, None, aux_weight=0.4)
        images = torch.cat([b[0] for b in self.batches])
        masks = torch.cat([b[1] for b in self.batches])
        for group in groups:
            loss = loss_fn(net(images[group]), masks[group]) / len(groups)
            loss.backward()
        return {n: p.grad.detach().clone() for n, p in net.named_parameters()}


def run_once(tmp_path, monkeypatch, name: str, batch_size: int, accum: int, *overrides: str):
    recorder = Recorder(monkeypatch)
    cfg = one_step_config(batch_size, accum, *overrides)
    run_dir = train(cfg, tmp_path / name, stop_after=1)
    return recorder, recorder.applied_gradient(run_dir)


def relative_error(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    diff = torch.cat([(a[n] - b[n]).flatten() for n in a]).norm()
    return float(diff / torch.cat([b[n].flatten() for n in b]).norm())


def assert_same_gradients(a, b, rtol: float = 1e-3) -> None:
    """Each tensor within ``rtol`` of its own norm (float32 summation-order noise)."""
    total = float(torch.cat([t.flatten() for t in b.values()]).norm())
    assert total > 1e-3, "a vanishing gradient would make this comparison meaningless"
    assert relative_error(a, b) < rtol
    for name in a:
        error = float((a[name] - b[name]).norm())
        assert error <= rtol * float(b[name].norm()) + 1e-7 * total, (name, error)


@pytest.mark.parametrize(("batch_size", "accum"), [(2, 2), (2, 4)])
def test_accumulated_step_equals_one_k_times_batch(
    tmp_path, monkeypatch, one_thread, batch_size, accum
):
    # Same valid-pixel count in every micro-batch: no augmentation, crop = image, and the
    # synthetic labels ignore no pixel.
    total = batch_size * accum
    small, grad_small = run_once(tmp_path, monkeypatch, "accum", batch_size, accum)
    big, grad_big = run_once(tmp_path, monkeypatch, "big", total, 1)
    assert [len(b[0]) for b in small.batches] == [batch_size] * accum
    assert [len(b[0]) for b in big.batches] == [total]
    # Same start, same samples in the same order, every pixel valid.
    for (n, p), q in zip(small.initial.named_parameters(), big.initial.parameters(), strict=True):
        assert torch.equal(p, q), n
    images = torch.cat([b[0] for b in small.batches])
    masks = torch.cat([b[1] for b in small.batches])
    assert torch.equal(images, big.batches[0][0]) and torch.equal(masks, big.batches[0][1])
    assert not (masks == IGNORE).any()

    assert_same_gradients(grad_small, grad_big)
    micro = [list(range(i, i + batch_size)) for i in range(0, total, batch_size)]
    assert_same_gradients(grad_small, small.reference_gradient(micro))
    # Both are the gradient of the big batch's mean loss, computed independently here.
    assert_same_gradients(grad_big, big.reference_gradient([list(range(total))]))
    # The comparison can fail: one micro-batch alone gives a clearly different gradient.
    one_micro = small.reference_gradient([list(range(batch_size))])
    assert relative_error(one_micro, grad_big) > 0.05


def test_unequal_valid_pixels_still_give_the_k_times_batch(tmp_path, monkeypatch, one_thread):
    """Micro-batches with different numbers of valid pixels: each pixel weighs the same, as
    in one big batch (plain ``loss / k`` would weigh each micro-batch the same instead)."""
    # Random downscaling (seeded per sample) then padding to the crop with ignore pixels:
    # each sample keeps a different number of valid pixels.
    aug = "data.scale_range=[0.4, 1.0]"
    small, grad_small = run_once(tmp_path, monkeypatch, "accum", 2, 2, aug)
    big, grad_big = run_once(tmp_path, monkeypatch, "big", 4, 1, aug)
    masks = torch.cat([b[1] for b in small.batches])
    assert torch.equal(masks, big.batches[0][1])
    valid = [int((b[1] != IGNORE).sum()) for b in small.batches]
    assert min(valid) < 0.8 * max(valid), valid  # clearly unequal micro-batches

    assert_same_gradients(grad_small, grad_big)
    # The big batch: the gradient of the mean over all valid pixels, computed here.
    assert_same_gradients(grad_big, big.reference_gradient([[0, 1, 2, 3]]))
    # The comparison can fail: equal weights per micro-batch are about 2% off here.
    equal_weights = small.reference_gradient([[0, 1], [2, 3]])
    assert relative_error(equal_weights, grad_big) > 5e-3
