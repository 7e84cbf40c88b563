"""Typed experiment configuration: one YAML file per experiment, validated overrides.

The dataclasses below are the schema and the defaults. ``load_config`` reads a YAML file,
rejecting unknown keys and values of the wrong type with one sentence naming the key;
``apply_overrides`` does the same for ``--set section.key=value``; ``config_to_dict`` gives
the resolved config that is written to every run folder and checkpoint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fcnlab.errors import FcnlabError


@dataclass
class ModelConfig:
    name: str = "deeplabv3plus_mobilenet_v2"
    backbone_weights: str | None = None  # None, "imagenet" or a path to a state dict
    output_stride: int | None = None
    fc_width: int = 4096
    upsample: str = "transposed"
    freeze_final_upsample: bool = False
    aux: bool = False
    width_mult: float = 1.0
    init_from: str | None = None  # checkpoint or state dict (staged FCN training)


@dataclass
class DataConfig:
    name: str = "synthetic"  # voc, camvid, folder, synthetic
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific options
    scale: float = 1.0  # resolution the model works at, relative to the images
    crop_size: list[int] = field(default_factory=lambda: [96, 128])  # H, W after scaling
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    hflip: bool = True
    color_jitter: float = 0.0
    batch_size: int = 8
    eval_batch_size: int = 1
    workers: int = 0  # loader processes; 0 loads in the training process


@dataclass
class TrainConfig:
    steps: int = 150  # optimizer steps
    optimizer: str = "adamw"  # sgd or adamw
    lr: float = 0.002
    backbone_lr_mult: float = 1.0  # e.g. 0.1 for a pretrained backbone
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    poly_power: float = 0.9
    class_weights: str | list[float] | None = None  # None, "median_frequency" or a list
    aux_weight: float = 0.4
    precision: str = "fp32"  # fp32, bf16 (CPU and GPU) or fp16 (GPU, with a grad scaler)
    channels_last: bool = False
    grad_accum: int = 1
    grad_clip: float | None = None
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto, cpu or cuda
    val_every: int = 50
    log_every: int = 10
    checkpoint_every: int = 50
    log_format: str = "jsonl"  # jsonl or csv
    tensorboard: bool = False
    report_samples: int = 4


@dataclass
class ExperimentConfig:
    """Defaults = configs/quickstart.yaml, so ``fcnlab train`` alone runs the quickstart."""

    experiment: str = "quickstart"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


CHOICES = {
    "train.optimizer": ("sgd", "adamw"),
    "train.precision": ("fp32", "bf16", "fp16"),
    "train.log_format": ("jsonl", "csv"),
    "train.device": ("auto", "cpu", "cuda"),
    "model.upsample": ("transposed", "bilinear"),
    "data.name": ("voc", "camvid", "folder", "synthetic"),
    "train.class_weights": ("median_frequency",),
}


def load_config(path: str | Path | None) -> ExperimentConfig:
    """Read a YAML experiment file (None: the built-in quickstart defaults)."""
    if path is None:
        return ExperimentConfig()
    path = Path(path)
    if not path.is_file():
        raise FcnlabError(f"config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise FcnlabError(f"config file {path} is not valid YAML: {err}".split("\n")[0]) from err
    if not isinstance(data, dict):
        raise FcnlabError(f"config file {path} must hold a mapping of sections.")
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    return _build(ExperimentConfig, data, "")


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``section.key=value`` overrides; values are parsed as YAML (``lr=1e-3``)."""
    data = config_to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise FcnlabError(f"override {item!r} must look like section.key=value.")
        *parents, last = key.strip().split(".")
        node = data
        for i, part in enumerate(parents):
            if not isinstance(node, dict) or part not in node:
                raise FcnlabError(f"unknown config key {'.'.join(parents[: i + 1])!r}.")
            node = node[part]
        if not isinstance(node, dict) or (
            last not in node
            and key.strip() != "data.options"
            and not key.startswith("data.options.")
        ):
            _unknown_key(key.strip())
        try:
            node[last] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise FcnlabError(f"override {item!r}: the value is not valid YAML.") from err
    return config_from_dict(data)


def _unknown_key(key: str) -> None:
    section = key.rpartition(".")[0]
    schema = {
        "": ExperimentConfig,
        "model": ModelConfig,
        "data": DataConfig,
        "train": TrainConfig,
    }.get(section)
    valid = [f.name for f in dataclasses.fields(schema)] if schema else ["model", "data", "train"]
    raise FcnlabError(f"unknown config key {key!r}; valid keys here: {', '.join(valid)}.")


def _build(cls: type, data: Any, prefix: str):
    if not isinstance(data, dict):
        raise FcnlabError(f"config section {prefix.rstrip('.') or 'root'} must be a mapping.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise FcnlabError(
                f"unknown config key {prefix + str(key)!r}; valid keys here: "
                f"{', '.join(sorted(names))}."
            )
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            values[key] = _coerce(value, hint, prefix + key)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, key)
            except FcnlabError:
                continue
        raise _type_error(key, value, hint)
    if hint is type(None):
        if value is None:
            return None
        raise _type_error(key, value, hint)
    if origin is list:
        if not isinstance(value, list):
            raise _type_error(key, value, hint)
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, hint)
        return dict(value)
    if hint is float and isinstance(value, str):
        value = _float_or_none(value)  # YAML 1.1 reads "1e-3" as a string
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        if key in CHOICES and value not in CHOICES[key]:
            raise FcnlabError(f"{key} must be one of {', '.join(CHOICES[key])}, not {value!r}.")
        return value
    raise _type_error(key, value, hint)


def _float_or_none(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _type_error(key: str, value: Any, hint: Any) -> FcnlabError:
    expected = getattr(hint, "__name__", None) if isinstance(hint, type) else None
    expected = expected or str(hint).replace("typing.", "").replace("NoneType", "None")
    return FcnlabError(f"config key {key!r} must be {expected}, not {value!r}.")
