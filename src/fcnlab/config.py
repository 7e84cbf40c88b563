"""Typed experiment configuration: one YAML file per experiment, validated overrides.

The dataclasses below are the schema: each field's type says what it holds and its
``Annotated`` constraints say which values are allowed (``Literal`` for choices, ranges for
numbers, lengths for lists, a visible GPU for ``device``). They both document and enforce the
config: every dataclass validates itself on construction, so a config that exists is valid.
``load_config`` reads a YAML file, ``apply_overrides`` applies ``--set section.key=value``,
:func:`check_option` validates a CLI option that mirrors a config key, and
``config_to_dict`` gives the resolved config written to every run folder and checkpoint.
Every refusal is one :class:`~fcnlab.errors.FcnlabError` sentence naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from fcnlab.errors import FcnlabError


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high`` (``None``: unbounded); ``open_low`` excludes ``low``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def allows(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or (
            value < self.high or (not self.open_high and value == self.high)
        )

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {_number(self.high)}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Length:
    """Lists of exactly ``n`` items."""

    n: int


@dataclass(frozen=True)
class Ascending:
    """Lists whose items do not decrease (``[low, high]`` ranges)."""


@dataclass(frozen=True)
class Available:
    """A device the machine has: ``cuda`` needs a visible CUDA GPU."""


@dataclass(frozen=True)
class ModelName:
    """A name from the model registry (``fcnlab models`` lists them)."""


@dataclass(frozen=True)
class Duration:
    """A positive duration such as ``90s``, ``45m``, ``1h30m`` (see :func:`parse_duration`)."""


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, open_low=True)]
NonNegativeFloat = Annotated[float, Range(0)]
UnitFloat = Annotated[float, Range(0, 1)]


@dataclass
class _Section:
    """Validates and coerces every field on construction (``_key`` prefixes error names)."""

    _key: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=True)
        for item in dataclasses.fields(self):
            hint = hints[item.name]
            value = getattr(self, item.name)
            if dataclasses.is_dataclass(hint):
                if not isinstance(value, hint):
                    raise FcnlabError(f"config section {item.name!r} must be a mapping.")
                continue
            key = f"{self._key}.{item.name}" if self._key else item.name
            setattr(self, item.name, coerce(value, hint, key))


@dataclass
class ModelConfig(_Section):
    _key: typing.ClassVar[str] = "model"
    name: Annotated[str, ModelName()] = "deeplabv3plus_mobilenet_v2"
    backbone_weights: str | None = None  # None, "imagenet" or a path to a state dict
    output_stride: Literal[8, 16, 32] | None = None
    fc_width: PositiveInt = 4096
    upsample: Literal["transposed", "bilinear"] = "transposed"
    freeze_final_upsample: bool = False
    aux: bool = False
    width_mult: Annotated[float, Range(0, 4, open_low=True)] = 1.0
    init_from: str | None = None  # checkpoint or state dict (staged FCN training)


@dataclass
class DataConfig(_Section):
    _key: typing.ClassVar[str] = "data"
    name: Literal["voc", "camvid", "folder", "synthetic"] = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific options
    #: The resolution the model works at, relative to the images.
    scale: Annotated[float, Range(0, 4, open_low=True)] = 1.0
    crop_size: Annotated[list[PositiveInt], Length(2)] = field(
        default_factory=lambda: [96, 128]
    )  # H, W after scaling
    scale_range: Annotated[list[PositiveFloat], Length(2), Ascending()] = field(
        default_factory=lambda: [0.5, 2.0]
    )
    hflip: bool = True
    color_jitter: UnitFloat = 0.0
    batch_size: PositiveInt = 8
    eval_batch_size: PositiveInt = 1
    workers: Annotated[int, Range(0, 64)] = 0  # loader processes; 0 loads in the training process


@dataclass
class TrainConfig(_Section):
    _key: typing.ClassVar[str] = "train"
    steps: PositiveInt = 150  # optimizer steps (the most, with a time_budget)
    #: Train for this long (e.g. 60m): the LR schedule follows the share of the budget spent,
    #: the final validation fits inside it, and the run stops at it.
    time_budget: Annotated[str, Duration()] | None = None
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: PositiveFloat = 0.002
    backbone_lr_mult: NonNegativeFloat = 1.0  # e.g. 0.1 for a pretrained backbone
    momentum: Annotated[float, Range(0, 1, open_high=True)] = 0.9
    weight_decay: NonNegativeFloat = 1e-4
    warmup_steps: NonNegativeInt = 0
    poly_power: NonNegativeFloat = 0.9
    class_weights: Literal["median_frequency"] | list[NonNegativeFloat] | None = None
    aux_weight: NonNegativeFloat = 0.4
    #: auto (bf16 where the CPU/GPU has native bf16, fp16 on GPUs without it, else fp32),
    #: fp32, bf16 (CPU and GPU) or fp16 (GPU, with a grad scaler); see fcnlab.hardware.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = False
    grad_accum: PositiveInt = 1
    grad_clip: PositiveFloat | None = None
    seed: NonNegativeInt = 0
    deterministic: bool = False
    device: Annotated[Literal["auto", "cpu", "cuda"], Available()] = "auto"
    val_every: PositiveInt = 50
    log_every: PositiveInt = 10
    checkpoint_every: PositiveInt = 50
    log_format: Literal["jsonl", "csv"] = "jsonl"
    tensorboard: bool = False
    report_samples: Annotated[int, Range(0, 64)] = 4
    #: At the end (CLI), write best.int8.onnx beside best.pt: calibrated on the training
    #: split, its val mIoU delta recorded; `--path auto` may use it (needs fcnlab[onnx]).
    int8_companion: bool = True


@dataclass
class ExperimentConfig(_Section):
    """Defaults = configs/quickstart.yaml, so ``fcnlab train`` alone runs the quickstart."""

    experiment: str = "quickstart"
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


SECTIONS: dict[str, type[_Section]] = {
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


def coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` as type ``hint`` with its constraints, or one sentence naming ``name``
    (a config key such as ``data.scale``, or a CLI option such as ``--scale``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        try:
            value = coerce(value, args[0], name)
        except _RangeError:
            raise
        except FcnlabError:
            if typing.get_origin(args[0]) is not None:
                raise  # a list item's own sentence names the item
            raise _error(name, hint, value) from None
        for constraint in hint.__metadata__:
            _apply(constraint, value, hint, name)
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, hint, name)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _error(name, hint, value)
    if hint is type(None):
        if value is None:
            return None
        raise _error(name, hint, value)
    if origin is list:
        if not isinstance(value, list):
            raise _error(name, hint, value)
        return [coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _error(name, hint, value)
        return dict(value)
    if hint is float:
        number = _float_or_none(value)
        if number is None or not math.isfinite(number):
            raise _error(name, hint, value)
        return number
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise _error(name, hint, value)


class _RangeError(FcnlabError):
    """The value had the right type but not an allowed value (preferred in unions)."""


def _coerce_union(value: Any, options: tuple, hint: Any, name: str) -> Any:
    near: FcnlabError | None = None
    for option in options:
        try:
            return coerce(value, option, name)
        except _RangeError as error:
            near = near or error
        except FcnlabError:
            continue
    raise near or _error(name, hint, value)


def _apply(constraint: object, value: Any, hint: Any, name: str) -> None:
    if isinstance(constraint, Range) and not constraint.allows(value):
        raise _RangeError(f"{_label(name)} must be {describe(hint)}, not {_show(value)}.")
    if isinstance(constraint, Length) and len(value) != constraint.n:
        raise _RangeError(f"{_label(name)} must be {describe(hint)}, not {_show(value)}.")
    if isinstance(constraint, Ascending) and list(value) != sorted(value):
        raise _RangeError(f"{_label(name)} must be {describe(hint)}, not {_show(value)}.")
    if isinstance(constraint, Available) and value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise _RangeError(
                f"{_label(name)} is 'cuda' but no CUDA GPU is visible here; use 'auto' or 'cpu'."
            )
    if isinstance(constraint, ModelName):
        _check_model_name(value, name)
    if isinstance(constraint, Duration):
        try:
            parse_duration(value)
        except ValueError:
            raise _RangeError(
                f"{_label(name)} must be {describe(hint)}, not {_show(value)}."
            ) from None


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90s``, ``45m``, ``1.5h``, ``1h30m``, ``2h15m10s`` (> 0)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    total, number, seen = 0.0, "", ""
    for char in text.strip().lower():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number and char not in seen:
            total += float(number) * units[char]
            number, seen = "", seen + char
        else:
            raise ValueError(text)
    if number or not seen or not 0 < total < math.inf:
        raise ValueError(text)
    return total


def _check_model_name(model: str, name: str) -> None:
    import difflib

    from fcnlab.models import list_models

    names = list_models()
    if model not in names:
        close = difflib.get_close_matches(model, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise _RangeError(
            f"{_label(name)} is {model!r}, not a known model{hint}; `fcnlab models` lists them."
        )


def describe(hint: Any) -> str:
    """What ``hint`` admits, in words: ``an integer >= 1``, ``one of sgd, adamw``, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _describe_annotated(args[0], hint.__metadata__)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return f"{args[0]!r}" if len(args) == 1 else "one of " + ", ".join(str(a) for a in args)
    if origin is list:
        return f"a list of {_plural(describe(args[0]))}"
    if origin is dict:
        return "a mapping"
    return {
        int: "an integer",
        float: "a finite number",
        str: "a string",
        bool: "true or false",
    }.get(hint, "null" if hint is type(None) else str(hint))


def _describe_annotated(base: Any, metadata: tuple) -> str:
    text = describe(base)
    for constraint in metadata:
        if isinstance(constraint, Range):
            text += f" {constraint.describe()}"
        elif isinstance(constraint, Length):
            text = text.replace("a list of", f"a list of {constraint.n}", 1)
        elif isinstance(constraint, Ascending):
            text += ", in increasing order"
        elif isinstance(constraint, ModelName):
            text = "a model name (see `fcnlab models`)"
        elif isinstance(constraint, Duration):
            text = "a duration such as 90s, 45m or 1h30m"
    return text


_PLURALS = {"an integer": "integers", "a finite number": "finite numbers", "a string": "strings"}


def _plural(text: str) -> str:
    for single, plural in _PLURALS.items():
        if text.startswith(single):
            return plural + text[len(single) :]
    return text


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _label(name: str) -> str:
    """``--scale`` stays as it is; a config key is quoted: ``config key 'data.scale'``."""
    return name if name.startswith("-") else f"config key {name!r}"


def _error(name: str, hint: Any, value: Any) -> FcnlabError:
    return FcnlabError(f"{_label(name)} must be {describe(hint)}, not {_show(value)}.")
