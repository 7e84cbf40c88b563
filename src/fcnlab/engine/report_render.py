"""Render the run report's content once as HTML and once as Markdown.

Contract: the report is a title plus a list of blocks (:class:`Heading`, :class:`Text`,
:class:`Table`, :class:`Images`, :class:`Code`); :func:`render_html` and
:func:`render_markdown` turn the same list into a self-contained page (inline CSS, images
referenced by paths relative to the run folder, so it renders offline and the folder can be
moved) and into GitHub-flavoured Markdown. Text is escaped here, so callers pass plain text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    """``align`` has one letter per column, ``l`` or ``r`` (right for numbers)."""

    header: list[str]
    rows: list[list[str]]
    align: str


@dataclass(frozen=True)
class Images:
    """Images shown one after the other; ``paths`` are relative to the run folder."""

    paths: list[str]
    caption: str = ""


@dataclass(frozen=True)
class Code:
    """A collapsed block of verbatim YAML (the resolved config)."""

    summary: str
    text: str


Block = Heading | Text | Table | Images | Code

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
.r { text-align: right; }
img { max-width: 100%; margin: 0.3em 0; display: block; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.caption { color: #666; font-size: 0.9em; }
"""


def render_html(title: str, blocks: list[Block]) -> str:
    """A complete, self-contained HTML page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h2>{e(block.text)}</h2>")
        elif isinstance(block, Text):
            parts.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, Table):
            cls = [' class="r"' if a == "r" else "" for a in block.align]
            head = "".join(f"<th{k}>{e(h)}</th>" for k, h in zip(cls, block.header, strict=True))
            cells = (zip(cls, row, strict=True) for row in block.rows)
            body = "".join(
                "<tr>" + "".join(f"<td{k}>{e(c)}</td>" for k, c in row) + "</tr>" for row in cells
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Images):
            if block.caption:
                parts.append(f'<p class="caption">{e(block.caption)}</p>')
            parts.extend(f'<img src="{e(p)}" alt="{e(_alt(p))}">' for p in block.paths)
        elif isinstance(block, Code):
            parts.append(
                f"<details><summary>{e(block.summary)}</summary><pre>{e(block.text)}</pre>"
                "</details>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _alt(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".png")


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def render_markdown(title: str, blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown with the same content as :func:`render_html`."""
    parts = [f"# {title}"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"## {block.text}")
        elif isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Table):
            lines = [
                "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                "|" + "|".join("---:" if a == "r" else ":---" for a in block.align) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
        elif isinstance(block, Images):
            images = "\n".join(f"![{_alt(p)}]({p})" for p in block.paths)
            parts.append(f"*{block.caption}*\n\n{images}" if block.caption else images)
        elif isinstance(block, Code):
            # GitHub renders <details> in Markdown; the fenced block inside stays verbatim.
            parts.append(
                f"<details><summary>{html.escape(block.summary)}</summary>\n\n"
                f"```yaml\n{block.text.rstrip()}\n```\n\n</details>"
            )
    return "\n\n".join(parts) + "\n"
