"""Write a benchmark's results into its own section of docs/benchmarks.md.

Each script owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; running
it again replaces that section and leaves the others alone.
"""

from __future__ import annotations

import platform
from pathlib import Path

from fcnlab import hardware

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine_line() -> str:
    """The CPU model and the ISA that decides its speed, CPUs/threads, torch, Python."""
    return f"{hardware.machine_line()}, Python {platform.python_version()}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, doc: Path = DOC) -> Path:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    return doc
