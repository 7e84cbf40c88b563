"""The optimiser and LR schedule: poly values, warm-up, budget progress, groups and decay."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from fcnlab.config import TrainConfig
from fcnlab.engine.budget import Budget
from fcnlab.engine.optim import build_optimizer, poly_lr, set_lr
from fcnlab.models import create_model

NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)
# Hand-computed: 0.5 ** 0.9, 0.01 ** 0.9 and 0.75 ** 0.9.
HALF_09, HUNDREDTH_09, THREE_QUARTERS_09 = 0.5358867312681466, 0.015848931924611134, 0.7718895


def test_poly_without_warmup():
    cfg = TrainConfig(lr=0.01, steps=100, warmup_steps=0, poly_power=0.9)
    assert poly_lr(0, cfg) == pytest.approx(0.01, rel=1e-12)
    assert poly_lr(50, cfg) == pytest.approx(0.01 * HALF_09, rel=1e-9)
    # The last step the loop runs is steps - 1: 1/100 of the way left.
    assert poly_lr(99, cfg) == pytest.approx(0.01 * HUNDREDTH_09, rel=1e-9)
    assert poly_lr(100, cfg) == 0.0
    assert poly_lr(150, cfg) == 0.0  # past the end: clamped, never negative or complex
    values = [poly_lr(s, cfg) for s in range(101)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_poly_power_one_is_linear_and_zero_is_constant():
    linear = TrainConfig(lr=0.2, steps=10, poly_power=1.0)
    assert [poly_lr(s, linear) for s in (0, 3, 9)] == pytest.approx([0.2, 0.14, 0.02])
    constant = TrainConfig(lr=0.2, steps=10, poly_power=0.0)
    assert [poly_lr(s, constant) for s in (0, 5, 9)] == pytest.approx([0.2, 0.2, 0.2])


def test_warmup_ramps_linearly_then_poly_decays():
    cfg = TrainConfig(lr=0.01, steps=105, warmup_steps=5, poly_power=0.9)
    ramp = [poly_lr(s, cfg) for s in range(5)]
    assert ramp == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.010], rel=1e-12)
    # Poly progress counts from the end of warm-up: step 5 is its start, 105 its end.
    assert poly_lr(5, cfg) == pytest.approx(0.01, rel=1e-12)
    assert poly_lr(55, cfg) == pytest.approx(0.01 * HALF_09, rel=1e-9)
    assert poly_lr(104, cfg) == pytest.approx(0.01 * HUNDREDTH_09, rel=1e-9)
    assert poly_lr(105, cfg) == 0.0


def test_time_budget_progress_replaces_the_step_count():
    cfg = TrainConfig(lr=0.01, steps=1000, warmup_steps=3, time_budget="100s")
    budget = Budget.from_config(cfg.time_budget)
    assert budget.seconds == 100
    # After warm-up the share of the budget spent is the progress, whatever the step.
    for step in (3, 10, 999):
        assert poly_lr(step, cfg, budget.fraction(25.0)) == pytest.approx(
            0.01 * THREE_QUARTERS_09, rel=1e-6
        )
    assert poly_lr(10, cfg, budget.fraction(50.0)) == pytest.approx(0.01 * HALF_09, rel=1e-9)
    assert poly_lr(10, cfg, budget.fraction(0.0)) == pytest.approx(0.01, rel=1e-12)
    assert poly_lr(10, cfg, budget.fraction(100.0)) == 0.0
    assert poly_lr(10, cfg, budget.fraction(250.0)) == 0.0  # over budget: clamped to 1
    assert poly_lr(10, cfg, -0.5) == pytest.approx(0.01)  # a negative share clamps to 0
    # Warm-up still follows the step count under a budget.
    assert poly_lr(0, cfg, budget.fraction(50.0)) == pytest.approx(0.01 / 3, rel=1e-12)
    assert poly_lr(2, cfg, budget.fraction(50.0)) == pytest.approx(0.01, rel=1e-12)
    # No budget: fraction() is None and the step count rules.
    assert Budget.from_config(None).fraction(50.0) is None
    assert poly_lr(500, cfg, None) == poly_lr(500, cfg)
    assert poly_lr(500, cfg) == pytest.approx(0.01 * (1 - 497 / 997) ** 0.9, rel=1e-9)


def _tiny_models() -> dict[str, nn.Module]:
    return {
        # BatchNorm, biases, an aux head and a frozen final upsampling (requires_grad False).
        "fcn8s_resnet18": create_model("fcn8s_resnet18", 3, aux=True, freeze_final_upsample=True),
        # Depthwise convs and a DeepLab head (its convs have no biases, its BNs do).
        "deeplabv3plus_mobilenet_v2": create_model(
            "deeplabv3plus_mobilenet_v2", 3, width_mult=0.25
        ),
    }


def _expected_decay(model: nn.Module, wd: float) -> dict[str, float]:
    """Weight decay per trainable parameter, from module types and names (not ``ndim``)."""
    expected = {}
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            full = f"{module_name}.{name}" if module_name else name
            expected[full] = 0.0 if isinstance(module, NORMS) or name == "bias" else wd
    return expected


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_groups_cover_every_parameter_once_with_the_right_decay_and_lr(optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=0.01, weight_decay=0.05, backbone_lr_mult=0.1)
    for model_name, model in _tiny_models().items():
        opt = build_optimizer(model, cfg)
        assert isinstance(opt, torch.optim.SGD if optimizer == "sgd" else torch.optim.AdamW)
        group_of = {}
        for index, group in enumerate(opt.param_groups):
            for param in group["params"]:
                assert id(param) not in group_of, "a parameter in two groups"
                group_of[id(param)] = index
        expected = _expected_decay(model, cfg.weight_decay)
        named = dict(model.named_parameters())
        frozen = {n for n, p in named.items() if not p.requires_grad}
        assert frozen == ({"head.upscore_final.deconv.weight"} if "fcn" in model_name else set())
        assert set(expected) == set(named) - frozen
        assert len(group_of) == len(expected), model_name
        set_lr(opt, 0.004)
        for name, decay in expected.items():
            group = opt.param_groups[group_of[id(named[name])]]
            assert group["weight_decay"] == decay, (model_name, name)
            mult = 0.1 if name.startswith("backbone.") else 1.0
            assert group["lr"] == pytest.approx(0.004 * mult), (model_name, name)
        for name in frozen:
            assert id(named[name]) not in group_of
        # Both kinds of parameter exist on both sides of the backbone boundary.
        kinds = {(n.startswith("backbone."), d == 0.0) for n, d in expected.items()}
        assert kinds == {(True, True), (True, False), (False, True), (False, False)}
        assert len(opt.param_groups) == 4


def test_optimizer_settings_follow_the_config():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.03, momentum=0.8))
    assert type(sgd) is torch.optim.SGD
    assert all(g["momentum"] == 0.8 and g["lr"] == 0.03 for g in sgd.param_groups)
    adamw = build_optimizer(model, TrainConfig(optimizer="adamw", lr=0.03))
    assert type(adamw) is torch.optim.AdamW
    assert all(g["lr"] == 0.03 for g in adamw.param_groups)
    assert TrainConfig().optimizer == "adamw"  # the default


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_step_with_zero_gradients_decays_only_the_decayed_weights(optimizer):
    # With zero gradients one step of either optimiser multiplies a weight by
    # 1 - lr * weight_decay (its group's lr, multiplier included) and leaves the
    # no-decay parameters exactly as they were.
    torch.manual_seed(0)
    model = create_model("fcn8s_resnet18", 3, aux=True)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    cfg = TrainConfig(optimizer=optimizer, lr=0.5, weight_decay=0.1, backbone_lr_mult=0.2)
    opt = build_optimizer(model, cfg)
    set_lr(opt, cfg.lr)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    opt.step()
    expected = _expected_decay(model, cfg.weight_decay)
    for name, param in model.named_parameters():
        lr = cfg.lr * (cfg.backbone_lr_mult if name.startswith("backbone.") else 1.0)
        factor = 1 - lr * expected[name]
        torch.testing.assert_close(param.detach(), before[name] * factor, msg=name)
    # The check above bites: decayed weights did move.
    conv = model.backbone.conv1.weight
    assert not torch.allclose(conv, before["backbone.conv1.weight"])
