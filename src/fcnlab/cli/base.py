"""The ``fcnlab`` command line's shared pieces: the Typer app, error handling, size parsing.

Every mistake a user can make raises FcnlabError somewhere below; ``user_errors`` turns it
into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import os

import typer
from rich.console import Console

from fcnlab.errors import FcnlabError

app = typer.Typer(
    name="fcnlab",
    help="FCN and DeepLabv3/v3+ semantic segmentation: train, evaluate, predict, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def user_errors(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FcnlabError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def parse_size(text: str) -> tuple[int, int]:
    """``"512x512"`` or ``"512"`` -> (H, W)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise FcnlabError(
            f"size must look like HxW with positive integers (e.g. 512x512), not {text!r}."
        )
    return size  # type: ignore[return-value]
