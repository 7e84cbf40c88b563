"""Optimiser and learning-rate schedule: SGD or AdamW, poly decay with linear warm-up."""

from __future__ import annotations

import torch
from torch import nn

from fcnlab.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Two parameter groups: the backbone at ``lr * backbone_lr_mult``, the rest at ``lr``.

    Norm weights and biases get no weight decay (they are not what overfits).
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        in_backbone = name.startswith(("backbone.", "module.backbone."))
        no_decay = param.ndim <= 1
        groups.setdefault((in_backbone, no_decay), []).append(param)
    param_groups = [
        {
            "params": params,
            "lr_mult": cfg.backbone_lr_mult if in_backbone else 1.0,
            "weight_decay": 0.0 if no_decay else cfg.weight_decay,
        }
        for (in_backbone, no_decay), params in groups.items()
    ]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=cfg.lr)
    return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum)


def poly_lr(step: int, cfg: TrainConfig, fraction: float | None = None) -> float:
    """Learning rate at optimizer step ``step`` (0-based): warm-up, then poly decay to 0.

    ``fraction`` (a time-budgeted run): the share of the budget spent, which replaces the
    share of ``cfg.steps`` done as the poly schedule's progress.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if fraction is None:
        fraction = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (1 - min(max(fraction, 0.0), 1.0)) ** cfg.poly_power


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
