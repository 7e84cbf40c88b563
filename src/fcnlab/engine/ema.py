"""An exponential moving average (EMA) of the weights, the model that validation sees.

After every optimizer step each parameter and floating-point buffer (BatchNorm's running
statistics) of the average moves towards the trained model's by ``1 - d``, with
``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates: early on the average follows the
model closely (its random start is forgotten), later it averages over about ``1 / (1 - decay)``
steps. Integer buffers (BatchNorm's batch counter) are copied. The average is plain weights
of the same model, so a checkpoint of it loads like any other.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The EMA of ``net``'s weights: ``module`` is a copy of ``net`` that ``update`` moves."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(net).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    def rate(self) -> float:
        """The decay of the next update (warmed up over the first updates)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        weight = 1.0 - self.rate()
        averaged, current = [], []
        for mine, theirs in zip(_tensors(self.module), _tensors(net), strict=True):
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)
        torch._foreach_lerp_(averaged, current, weight)
        self.updates += 1

    def load(self, state_dict: dict[str, torch.Tensor], updates: int) -> None:
        """Restore a saved average (``state_dict`` of ``module``) and its update count."""
        self.module.load_state_dict(state_dict)
        self.updates = updates


def _tensors(net: nn.Module) -> list[torch.Tensor]:
    return [*net.parameters(), *net.buffers()]
