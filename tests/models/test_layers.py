"""Upsampling layers start as bilinear interpolation; image-pooling BN survives a batch of one."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fcnlab.hardware import cpu_has_native_bf16
from fcnlab.models.layers import PoolingBatchNorm, ScoreConv, Upsample, bilinear_kernel


def smooth_input(channels: int, h: int, w: int) -> torch.Tensor:
    ys = torch.linspace(0, 3, h)[:, None]
    xs = torch.linspace(0, 2, w)[None, :]
    base = torch.sin(ys) * torch.cos(xs) + 0.3 * ys * xs
    return torch.stack([base * (c + 1) for c in range(channels)])[None]


@pytest.mark.parametrize("factor", [2, 4, 8, 16, 32])
def test_transposed_conv_starts_as_bilinear_interpolation(factor):
    x = smooth_input(3, 9, 11)
    up = Upsample(3, factor, mode="transposed")
    conv = up.deconv
    assert conv.kernel_size == (2 * factor, 2 * factor)
    assert conv.stride == (factor, factor) and conv.padding == (factor // 2, factor // 2)
    out = up(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert out.shape == ref.shape == (1, 3, 9 * factor, 11 * factor)
    # Transposed convs see zeros beyond the border where interpolate clamps: compare inside.
    inner = (..., slice(factor, -factor), slice(factor, -factor))
    assert torch.allclose(out[inner], ref[inner], atol=1e-5)


def test_bilinear_kernel_is_diagonal():
    w = bilinear_kernel(4, 4)
    assert w.shape == (4, 4, 4, 4)
    off_diagonal = w.clone()
    off_diagonal[range(4), range(4)] = 0
    assert off_diagonal.abs().sum() == 0
    expected_1d = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(w[0, 0], expected_1d[:, None] * expected_1d[None, :])


def test_frozen_and_bilinear_modes():
    frozen = Upsample(5, 8, frozen=True)
    assert not frozen.deconv.weight.requires_grad
    plain = Upsample(5, 8, mode="bilinear")
    assert list(plain.parameters()) == []
    x = smooth_input(5, 4, 6)
    assert plain(x).shape == (1, 5, 32, 48)
    assert Upsample(5, 1)(x) is x


def test_pooling_batchnorm_accepts_one_value_per_channel_in_training():
    bn = PoolingBatchNorm(4).train()
    bn.running_mean.fill_(1.0)
    out = bn(torch.full((1, 4, 1, 1), 3.0))
    expected = (3.0 - 1.0) / (1.0 + bn.eps) ** 0.5
    assert torch.allclose(out, torch.full_like(out, expected))
    assert torch.equal(bn.running_mean, torch.ones(4)), "a single value must not update stats"
    batch = torch.randn(4, 4, 1, 1)
    assert torch.allclose(bn(batch).mean(dim=0).flatten(), torch.zeros(4), atol=1e-5)


@pytest.mark.parametrize("factor", [2, 4, 8, 16, 32])
def test_upsample_equals_the_transposed_conv_in_values_and_gradients(factor):
    up = Upsample(5, factor)
    with torch.no_grad():
        up.deconv.weight.normal_()  # learnt weights, not just the bilinear start
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    got = up(x)
    want = F.conv_transpose2d(x, up.deconv.weight, stride=factor, padding=factor // 2)
    assert got.shape == (2, 5, 3 * factor, 4 * factor)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(got)
    got_grads = torch.autograd.grad(got, (x, up.deconv.weight), grad_out)
    want_grads = torch.autograd.grad(want, (x, up.deconv.weight), grad_out)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_score_conv_is_a_conv_that_scores_in_fp32_under_cpu_autocast():
    conv = ScoreConv(64, 3, 1)
    plain = torch.nn.Conv2d(64, 3, 1)
    plain.load_state_dict(conv.state_dict())  # the same keys and shapes: checkpoints load
    x = torch.randn(2, 64, 5, 7)
    torch.testing.assert_close(conv(x), plain(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores, bf16_scores = conv(x.bfloat16()), plain(x.bfloat16())
    assert scores.dtype == torch.float32 and bf16_scores.dtype == torch.bfloat16
    torch.testing.assert_close(scores, plain(x.bfloat16().float()))
    conv.bfloat16()  # the bf16 inference backend's weights: a plain bf16 conv then
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x.bfloat16()).dtype == torch.bfloat16


SCORE_BACKWARD = """
import torch
from fcnlab.models.layers import ScoreConv
torch.set_num_threads(2)
conv, x = ScoreConv(4096, 4, 1), torch.randn(8, 4096, 3, 4, requires_grad=True)
for _ in range(12):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.square().mean().backward()
print("ok")
"""


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="the crash is oneDNN's AMX bf16 path")
def test_fcn_scores_after_4096_channels_train_in_bf16_without_crashing():
    # With a plain nn.Conv2d this aborted the process ("free(): invalid next size") on an AMX
    # Xeon with 2 threads within 3 steps: FCN-VGG/AlexNet training with 1-15 classes.
    done = subprocess.run([sys.executable, "-c", SCORE_BACKWARD], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]
