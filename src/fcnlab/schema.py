"""Typed schemas: dataclasses whose annotations say, and enforce, which values are allowed.

A field's type says what it holds (``int``, ``Literal["sgd", "adamw"]``, ``list[float]``,
``X | None``) and its ``Annotated`` constraints narrow it (:class:`Range`, :class:`Length`,
:class:`Ascending`, :class:`Available`, :class:`Duration`). A :class:`Section` validates and
coerces every field on construction, so an instance that exists is valid. The experiment config
(:mod:`fcnlab.config`) and the model options (:mod:`fcnlab.models.options`) are both built
from these parts. Every refusal is one :class:`~fcnlab.errors.FcnlabError` sentence naming the
key (``config key 'data.scale'``), the CLI option (``--scale``) or the model option.

A constraint is any object with ``check(value, hint, name)`` (raising :class:`RangeError`)
and ``describe(text)`` (what the constrained type admits, in words).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fcnlab.errors import FcnlabError


class RangeError(FcnlabError):
    """The value had the right type but not an allowed value (preferred in unions)."""


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

    def check(self, value: Any, hint: Any, name: str) -> None:
        if not self.allows(value):
            raise out_of_range(name, hint, value)

    def describe(self, text: str) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {_number(self.high)}")
        return f"{text} {' and '.join(parts)}"


@dataclass(frozen=True)
class Length:
    """Lists of exactly ``n`` items."""

    n: int

    def check(self, value: Any, hint: Any, name: str) -> None:
        if len(value) != self.n:
            raise out_of_range(name, hint, value)

    def describe(self, text: str) -> str:
        return text.replace("a list of", f"a list of {self.n}", 1)


@dataclass(frozen=True)
class Ascending:
    """Lists whose items do not decrease (``[low, high]`` ranges)."""

    def check(self, value: Any, hint: Any, name: str) -> None:
        if list(value) != sorted(value):
            raise out_of_range(name, hint, value)

    def describe(self, text: str) -> str:
        return f"{text}, in increasing order"


@dataclass(frozen=True)
class Available:
    """A device the machine has: ``cuda`` needs a visible CUDA GPU."""

    def check(self, value: Any, hint: Any, name: str) -> None:
        if value == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise RangeError(
                    f"{label(name)} is 'cuda' but no CUDA GPU is visible here; use 'auto' or 'cpu'."
                )

    def describe(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Duration:
    """A positive duration such as ``90s``, ``45m``, ``1h30m`` (see :func:`parse_duration`)."""

    def check(self, value: Any, hint: Any, name: str) -> None:
        try:
            parse_duration(value)
        except ValueError:
            raise out_of_range(name, hint, value) from None

    def describe(self, text: str) -> str:
        return "a duration such as 90s, 45m or 1h30m"


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, open_low=True)]
NonNegativeFloat = Annotated[float, Range(0)]
UnitFloat = Annotated[float, Range(0, 1)]


@dataclass
class Section:
    """Validates and coerces every field on construction.

    ``_key`` prefixes the names in errors (``data`` -> ``config key 'data.scale'``);
    ``_what`` replaces "config key" for schemas that are not config sections.
    """

    _key: typing.ClassVar[str] = ""
    _what: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=True)
        for item in dataclasses.fields(self):
            hint = hints[item.name]
            value = getattr(self, item.name)
            if dataclasses.is_dataclass(hint):
                if not isinstance(value, hint):
                    raise FcnlabError(f"config section {item.name!r} must be a mapping.")
                continue
            setattr(self, item.name, coerce(value, hint, self.field_name(item.name)))

    @classmethod
    def field_name(cls, name: str) -> str:
        if cls._what:
            return f"{cls._what} {name!r}"
        return f"{cls._key}.{name}" if cls._key else name


def field_names(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` as type ``hint`` with its constraints, or one sentence naming ``name``
    (a config key such as ``data.scale``, or a CLI option such as ``--scale``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        try:
            value = coerce(value, args[0], name)
        except RangeError:
            raise
        except FcnlabError:
            if typing.get_origin(args[0]) is not None:
                raise  # a list item's own sentence names the item
            raise _error(name, hint, value) from None
        for constraint in hint.__metadata__:
            constraint.check(value, hint, name)
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


def _coerce_union(value: Any, options: tuple, hint: Any, name: str) -> Any:
    near: FcnlabError | None = None
    for option in options:
        try:
            return coerce(value, option, name)
        except RangeError as error:
            near = near or error
        except FcnlabError:
            continue
    raise near or _error(name, hint, value)


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


def choices(hint: Any) -> tuple:
    """The values a ``Literal`` type (possibly ``Annotated``) admits."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is not Literal:
        raise TypeError(f"{hint} is not a Literal type")
    return typing.get_args(hint)


def describe(hint: Any) -> str:
    """What ``hint`` admits, in words: ``an integer >= 1``, ``one of sgd, adamw``, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        text = describe(args[0])
        for constraint in hint.__metadata__:
            text = constraint.describe(text)
        return text
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


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def label(name: str) -> str:
    """``--scale`` and ``model option 'fc_width'`` stay as they are; a config key is quoted:
    ``config key 'data.scale'``."""
    return name if name.startswith("-") or " " in name else f"config key {name!r}"


def out_of_range(name: str, hint: Any, value: Any) -> RangeError:
    return RangeError(f"{label(name)} must be {describe(hint)}, not {show(value)}.")


def _error(name: str, hint: Any, value: Any) -> FcnlabError:
    return FcnlabError(f"{label(name)} must be {describe(hint)}, not {show(value)}.")
