"""Everything a training run is built from: data, model, optimiser, loss, loaders.

``prepare`` turns a validated config into a :class:`Run`; the loop in ``train.py`` only
uses what is here. Augmentation is seeded per (seed, epoch, sample), so a resumed run and a
run with any number of loader workers see exactly the same crops and flips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from fcnlab.config import ExperimentConfig
from fcnlab.data import (
    LabelSpace,
    SegmentationDataset,
    build_dataset,
    eval_transforms,
    train_transforms,
)
from fcnlab.data.sequences import balance_sequences, hold_out
from fcnlab.engine.budget import Budget
from fcnlab.engine.distributed import Context
from fcnlab.engine.ema import WeightAverage
from fcnlab.engine.guards import FiniteGuard
from fcnlab.engine.losses import SegmentationLoss, class_weights
from fcnlab.engine.optim import build_optimizer
from fcnlab.engine.runlog import MetricsLog
from fcnlab.errors import FcnlabError
from fcnlab.hardware import PrecisionChoice, resolve_precision
from fcnlab.models import Segmenter, create_model, input_normalization
from fcnlab.models.options import ModelOptions
from fcnlab.models.transfer import init_from


class SeededDataset(Dataset):
    """Draws each sample's augmentation from its own seed: (seed, epoch, index)."""

    def __init__(self, dataset: SegmentationDataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, self.epoch, index)) % 2**62)
            return self.dataset[index]


class SkipFirst(Sampler):
    """The wrapped sampler's order without its first ``skip`` indices (resuming mid-epoch)."""

    def __init__(self, sampler: Sampler, skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.sampler):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


@dataclass
class Run:
    cfg: ExperimentConfig
    ctx: Context
    run_dir: Path
    net: Segmenter  # the plain model (checkpoints, evaluation)
    model: nn.Module  # what the loop calls: net, or net wrapped in DDP
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_fn: SegmentationLoss
    train_set: SeededDataset
    sampler: DistributedSampler
    val_set: SegmentationDataset
    holdout_set: SegmentationDataset | None  # data.holdout_sequences, evaluated beside val
    info: LabelSpace
    log: MetricsLog | None
    guard: FiniteGuard
    precision: PrecisionChoice  # train.precision resolved for this device (auto -> ...)
    budget: Budget
    ema: WeightAverage | None  # train.ema: the average that validation and best.pt use
    last_metrics: dict | None = None  # the latest validation
    lr: float = 0.0  # the learning rate of the last optimizer step
    saved_step: int | None = None  # the step of the last.pt this run wrote or resumed from

    @property
    def eval_net(self) -> Segmenter:
        """What is validated and saved as the model: the weight average if any, else net."""
        return self.ema.module if self.ema is not None else self.net

    def train_mode(self) -> None:
        """Training mode; with ``train.freeze_bn`` the backbone's BatchNorm stays in eval."""
        self.model.train()
        if self.cfg.train.freeze_bn:
            for module in self.net.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def loader(self, epoch: int, skip_samples: int) -> DataLoader:
        data = self.cfg.data
        # Its own generator: creating an iterator must not draw from the global RNG, or a
        # resumed run would see different dropout masks than an uninterrupted one.
        generator = torch.Generator().manual_seed(self.cfg.train.seed * 10007 + epoch)
        return DataLoader(
            self.train_set,
            batch_size=data.batch_size,
            sampler=SkipFirst(self.sampler, skip_samples),
            num_workers=data.workers,
            pin_memory=self.ctx.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
            generator=generator,
        )


def prepare(cfg: ExperimentConfig, ctx: Context, run_dir: Path) -> Run:
    precision = _precision(cfg, ctx)
    torch.manual_seed(cfg.train.seed + ctx.rank)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    train_set, val_set, holdout_set = _datasets(cfg)
    info = train_set.info
    net = _model(cfg, info, ctx)
    weights = _class_weights(cfg, train_set, ctx)
    net, model = _distribute(net, ctx)
    sampler = DistributedSampler(
        train_set,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
    )
    return Run(
        cfg=cfg,
        ctx=ctx,
        run_dir=run_dir,
        net=net,
        model=model,
        optimizer=build_optimizer(net, cfg.train),
        scaler=torch.amp.GradScaler(ctx.device.type, enabled=precision.precision == "fp16"),
        loss_fn=SegmentationLoss(
            info.ignore_index, weights, cfg.train.aux_weight, cfg.train.label_smoothing
        ),
        train_set=SeededDataset(train_set, cfg.train.seed),
        sampler=sampler,
        val_set=val_set,
        holdout_set=holdout_set,
        info=info,
        log=MetricsLog(run_dir, cfg.train.log_format, cfg.train.tensorboard)
        if ctx.is_main
        else None,
        guard=FiniteGuard(ctx.device),
        precision=precision,
        budget=Budget.from_config(cfg.train.time_budget),
        ema=WeightAverage(net, cfg.train.ema) if cfg.train.ema > 0 else None,
    )


def _distribute(net: Segmenter, ctx: Context) -> tuple[Segmenter, nn.Module]:
    """(net, what the loop calls): net itself on one process, else net wrapped in DDP.

    On CUDA, BatchNorm becomes SyncBatchNorm (statistics over the global batch). PyTorch's
    SyncBatchNorm is CUDA-only, so on CPU (gloo) each process normalises with its own batch
    and DDP broadcasts rank 0's running statistics at every forward.
    """
    if not ctx.distributed:
        return net, net
    if ctx.device.type != "cuda":
        return net, DistributedDataParallel(net)
    net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net, DistributedDataParallel(net, device_ids=[ctx.device.index])


def _precision(cfg: ExperimentConfig, ctx: Context) -> PrecisionChoice:
    if cfg.train.precision == "fp16" and ctx.device.type != "cuda":
        raise FcnlabError(
            "train.precision=fp16 needs a CUDA GPU; on a CPU use auto (bf16 where the CPU "
            "has AMX or AVX512-BF16, else fp32)."
        )
    return resolve_precision(cfg.train.precision, ctx.device)


def _datasets(
    cfg: ExperimentConfig,
) -> tuple[SegmentationDataset, SegmentationDataset, SegmentationDataset | None]:
    """(train, val, held-out sequences or None): the held-out ones are not in train's list."""
    data = cfg.data
    probe = build_dataset(data.name, data.root, data.train_split, **data.options)
    # The input normalisation is the backbone's (its pretrained weights expect it), not the
    # dataset's: EfficientNet-Lite wants mean = std = 0.5, torchvision's ImageNet statistics.
    probe.info = probe.info.normalized_by(*input_normalization(cfg.model.name))
    ignore = probe.info.ignore_index
    train_tf = train_transforms(
        tuple(data.crop_size),
        tuple(data.scale_range),
        data.hflip,
        data.color_jitter,
        probe.info.mean,
        probe.info.std,
        ignore,
        base_scale=data.scale,
        blur=data.blur,
    )
    train_set, holdout_set = hold_out(probe, data.holdout_sequences)
    if data.balance_sequences:
        train_set = balance_sequences(train_set)
    train_set.transform = train_tf
    val_tf = eval_transforms(probe.info.mean, probe.info.std)
    if holdout_set is not None:
        holdout_set.transform = val_tf
    val_set = build_dataset(data.name, data.root, data.val_split, val_tf, **data.options)
    return train_set, val_set, holdout_set


def _model(cfg: ExperimentConfig, info: LabelSpace, ctx: Context) -> Segmenter:
    m = cfg.model
    net = create_model(
        m.name,
        info.num_classes,
        backbone_weights=m.backbone_weights,
        options=ModelOptions.pick(m),
    )
    if m.init_from:
        report = init_from(net, m.init_from)
        if ctx.is_main:
            print(f"init_from {m.init_from}: {report}")
    net = net.to(ctx.device)
    if cfg.train.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _class_weights(cfg: ExperimentConfig, dataset: SegmentationDataset, ctx: Context):
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fcnlab"
    if ctx.distributed and not ctx.is_main:
        torch.distributed.barrier()  # rank 0 computes and caches first
    weights = class_weights(cfg.train.class_weights, dataset, cache)
    if ctx.distributed and ctx.is_main:
        torch.distributed.barrier()
    return weights
