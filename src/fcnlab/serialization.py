"""Reading files written by ``torch.save``, and checking the plain data they hold.

Everything fcnlab reads (backbone weights, state dicts, checkpoints) goes through
``read_torch_file``: ``weights_only=True`` (no pickled code runs), tensors on the CPU.
``file_sha256`` is the one hash of such files (weights' provenance, the int8 companion's
link to its checkpoint).

The ``expect_*`` helpers check one field of such plain data (a checkpoint, a model card's
JSON) and return it typed, or raise :class:`FcnlabError` with one sentence naming the file
(``source``), the field and what it must be. Booleans never count as numbers.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import torch

from fcnlab.errors import FcnlabError

_DAMAGED = "it is damaged or was not written by fcnlab"


def read_torch_file(path: Path, what: str) -> Any:
    """Load ``path``; ``what`` names the file's role in the error ("weights file", ...)."""
    if not path.is_file():
        raise FcnlabError(f"{what} {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise FcnlabError(
            f"could not read {what} {path}: it is truncated or not a PyTorch file "
            f"({type(err).__name__})."
        ) from err


def shown(value: Any, limit: int = 40) -> str:
    """A short one-line ``repr`` of ``value`` for an error message (tensors by shape)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _wrong(source: str, key: str, value: Any, expectation: str) -> FcnlabError:
    return FcnlabError(
        f"{source} has {key} {shown(value)}, but it must be {expectation}; {_DAMAGED}."
    )


def expect_entry(data: Any, key: str, source: str) -> Any:
    """``data[key]``, where ``data`` must be a dict that has ``key``."""
    if not isinstance(data, dict):
        raise FcnlabError(
            f"{source} holds {type(data).__name__} where a mapping belongs; {_DAMAGED}."
        )
    if key not in data:
        raise FcnlabError(f"{source} has no '{key}' entry; {_DAMAGED}.")
    return data[key]


def expect_dict(value: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _wrong(source, key, value, "a mapping with string keys")
    return value


def expect_int(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(source, key, value, "an integer")
    return value


def expect_number(value: Any, key: str, source: str, positive: bool = False) -> float:
    """A finite int or float (``positive``: also > 0), as a float."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or (positive and value <= 0):
        raise _wrong(source, key, value, "a finite number" + (" > 0" if positive else ""))
    return float(value)


def expect_str_list(value: Any, key: str, source: str) -> list[str]:
    """A non-empty list (or tuple) of strings."""
    if not isinstance(value, (list, tuple)) or not value:
        raise _wrong(source, key, value, "a non-empty list of strings")
    if not all(isinstance(item, str) for item in value):
        raise _wrong(source, key, value, "a non-empty list of strings")
    return list(value)


def expect_triple(value: Any, key: str, source: str, positive: bool = False) -> tuple[float, ...]:
    """Three finite numbers (``positive``: each > 0), e.g. a normalisation mean or std."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _wrong(source, key, value, "a list of 3 numbers")
    return tuple(expect_number(v, key, source, positive) for v in value)


def expect_palette(value: Any, key: str, source: str, count: int) -> list[tuple[int, int, int]]:
    """``count`` colours, each an [r, g, b] triple of integers 0..255."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise _wrong(source, key, value, f"a list of {count} [r, g, b] colours, one per class")
    colors = []
    for color in value:
        ok = isinstance(color, (list, tuple)) and len(color) == 3
        if not ok or not all(_is_int(c) and 0 <= c <= 255 for c in color):
            raise _wrong(source, key, color, "an [r, g, b] colour with integers 0..255")
        colors.append((int(color[0]), int(color[1]), int(color[2])))
    return colors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
