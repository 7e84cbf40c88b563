"""The process group, read from torchrun's environment; single-process runs need none.

``setup()`` initialises torch.distributed when ``WORLD_SIZE`` > 1 (gloo on CPU, NCCL on
CUDA) and returns a ``Context``; ``is_main`` guards every write (logs, checkpoints, report).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(requested_device: str = "auto", timeout_s: int = 600) -> Context:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return Context(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


def broadcast_floats(values: list[float], src: int = 0) -> list[float]:
    """Rank ``src``'s ``values`` on every rank (a collective); ``values`` without a group."""
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src)
    return tensor.cpu().tolist()


def all_gather_object(value: object) -> list:
    """Every rank's ``value`` in rank order (a collective); ``[value]`` without a group."""
    if not dist.is_initialized():
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Give every process rank ``src``'s buffers (BatchNorm running statistics).

    DDP broadcasts buffers at the start of each forward, but without SyncBatchNorm (CPU) every
    rank then updates them from its own batch, so they differ after every step; evaluation
    needs one set, the set rank 0 saves. A no-op without a process group.
    """
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src)
