"""Dataset options checked against the dataset constructor's own signature.

:func:`check_options` rejects unknown option names (listing the valid ones) and values that
do not fit the constructor's type annotations, in one sentence naming the option, what it
must be and the value given. Values arrive as YAML gives them (``--option size=[64,64]`` or a
config file), so a list is accepted where the annotation says tuple and is turned into one.
Ranges stay with the constructors, which raise :class:`FcnlabError` themselves.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from pathlib import Path
from typing import Any

from fcnlab.errors import FcnlabError
from fcnlab.serialization import shown

#: Constructor parameters that are arguments of ``build_dataset`` itself, not options.
FIXED = ("root", "split", "transform")
_SINGULAR = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURAL = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def check_options(name: str, cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for dataset ``name`` (class ``cls``), checked and converted."""
    valid = [p for p in inspect.signature(cls).parameters if p not in FIXED]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise FcnlabError(
            f"dataset '{name}' has no option(s) {', '.join(unknown)}; "
            f"valid options are {', '.join(valid)}."
        )
    hints = typing.get_type_hints(cls.__init__)
    checked = {}
    for key, value in options.items():
        fits, converted = conform(value, hints.get(key, Any))
        if not fits:
            raise FcnlabError(
                f"dataset '{name}' option {key} must be {describe(hints[key])}, not {shown(value)}."
            )
        checked[key] = converted
    return checked


def conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``hint``, and the value converted to it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            fits, converted = conform(value, member)
            if fits:
                return True, converted
        return False, value
    if origin is tuple:
        members = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(members):
            return False, value
        pairs = [conform(item, member) for item, member in zip(value, members, strict=True)]
        return all(fits for fits, _ in pairs), tuple(converted for _, converted in pairs)
    if hint is type(None):
        return value is None, value
    if hint in (int, float) and isinstance(value, bool):
        return False, value
    if hint is float:
        return isinstance(value, (int, float)), value
    if hint is Path:
        return isinstance(value, (str, os.PathLike)), value
    if hint in (bool, int, str):
        return isinstance(value, hint), value
    return True, value  # an annotation this checker does not know: the constructor decides


def describe(hint: Any) -> str:
    """What a value of annotation ``hint`` looks like, for an error message."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(hint) if not (m is str and Path in hint.__args__)]
        words = [describe(m) for m in members]
        return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
    if origin is tuple:
        members = typing.get_args(hint)
        if len(set(members)) == 1 and members[0] in _PLURAL:
            example = {int: " such as [96, 128]"}.get(members[0], "")
            return f"a list of {len(members)} {_PLURAL[members[0]]}{example}"
        return f"a list of {len(members)} values"
    if hint is type(None):
        return "null"
    if hint is Path:
        return "a path"
    return _SINGULAR.get(hint, getattr(hint, "__name__", str(hint)))
