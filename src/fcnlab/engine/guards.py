"""Guards that keep a training run honest: its numbers stay finite, its loops can end.

- :class:`FiniteGuard` records, on the device, the first step whose loss was not finite.
  Recording costs no host sync; :meth:`FiniteGuard.first_bad_step` syncs once and is called
  only where the loop syncs anyway (log steps) and before every checkpoint is written.
- :func:`count_nonfinite` counts the non-finite values of a model's weights (one host sync),
  so no checkpoint with NaN or inf weights is ever written.
- :func:`steps_per_epoch` refuses, before training starts, data and settings that allow no
  optimizer step at all (fewer samples than one batch), so the loop can never spin.
- :func:`batches` iterates a DataLoader and turns a worker process's wrapped error back into
  the original one-sentence :class:`~fcnlab.errors.FcnlabError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch
from torch import nn

from fcnlab.engine.checkpoint import non_finite_count
from fcnlab.errors import FcnlabError, original_message

T = TypeVar("T")


class FiniteGuard:
    """The first optimizer step (1-based) whose loss was NaN or inf, kept on the device."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    def observe(self, loss: torch.Tensor, step: int) -> None:
        """Note ``loss`` of optimizer step ``step``; asynchronous (no host sync)."""
        bad = ~torch.isfinite(loss.detach()).all()
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)

    def first_bad_step(self) -> int | None:
        """The first bad step on any process, or None; one host sync (collective under DDP)."""
        flag = torch.where(self.first_bad < 0, torch.iinfo(torch.int64).max, self.first_bad)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = flag.clone()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        value = int(flag.item())
        return None if value == torch.iinfo(torch.int64).max else value


def count_nonfinite(module: nn.Module) -> int:
    """How many parameter and buffer values of ``module`` are NaN or inf (one host sync)."""
    return non_finite_count(module.state_dict())


def steps_per_epoch(samples: int, batch_size: int, processes: int, grad_accum: int) -> int:
    """Optimizer steps one epoch allows (at least 1), or a sentence saying why none can run."""
    per_process = samples // processes
    batches = per_process // batch_size
    if batches == 0:
        raise FcnlabError(
            f"the train split has {samples} samples ({per_process} per process), fewer than "
            f"one batch of data.batch_size={batch_size}, so no optimizer step can run; lower "
            "data.batch_size or add training images."
        )
    return max(1, batches // grad_accum)


def batches(loader: Iterable[T]) -> Iterator[T]:
    """``loader``'s batches; a worker's FcnlabError comes out as its own sentence."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except FcnlabError as error:
            raise FcnlabError(original_message(error)) from None
        yield batch
