"""Solid-colour PNGs of any size, written row by row: huge in pixels, tiny on disk."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_CHANNELS = {"L": (0, 1), "RGB": (2, 3)}  # PNG colour type, bytes per pixel


def solid_png(width: int, height: int, mode: str = "RGB", value: int = 90) -> bytes:
    """A valid PNG of ``width x height`` pixels all ``value``, without holding its pixels."""
    colour_type, channels = _CHANNELS[mode]
    row = b"\x00" + bytes([value]) * (width * channels)  # filter byte, then the pixels
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def write_solid_png(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    path.write_bytes(solid_png(width, height, mode))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
