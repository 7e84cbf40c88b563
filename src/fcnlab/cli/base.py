"""The ``fcnlab`` command line's shared pieces: the Typer app, error handling, size parsing.

Every mistake a user can make raises FcnlabError somewhere below; ``user_errors`` turns it
into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from fcnlab.errors import FcnlabError, original_message

try:  # Typer vendors Click since 0.2x; older releases use the click package
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

_NO_ARGS = getattr(click_errors, "NoArgsIsHelpError", ())

console = Console()
err_console = Console(stderr=True)


class OneLineErrors(TyperGroup):
    """The command group, with Click's usage errors (a bad option type, a missing argument)
    printed as one ``error:`` line and exit code 2, like every other user error."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS as error:
            console.print(error.ctx.get_help(), highlight=False, markup=False)
            sys.exit(0)
        except click_errors.ClickException as error:
            where = f" (see {error.ctx.command_path} --help)" if getattr(error, "ctx", None) else ""
            _print_error(f"{error.format_message()}{where}")
            sys.exit(error.exit_code)
        except typer.Abort:
            err_console.print("aborted.", highlight=False)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="fcnlab",
    help="FCN and DeepLabv3/v3+ semantic segmentation: train, evaluate, predict, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineErrors,
)


def _print_error(sentence: str) -> None:
    err_console.print(
        f"[bold red]error:[/] {sentence}", highlight=False, soft_wrap=True, markup=True
    )


def user_errors(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FcnlabError as err:
            _print_error(_escape(original_message(err)))
            raise typer.Exit(2) from None

    return wrapper


def _escape(text: str) -> str:
    """``text`` shown literally by rich (a path like ``[x]`` is not markup)."""
    from rich.markup import escape

    return escape(text)


#: What ``--path`` (the hidden alias of ``--backend``, kept for one release) prints.
PATH_NOTE = "note: --path is deprecated; use --backend"


def deprecated_path() -> None:
    """The one-line deprecation note of ``--path``, on stderr."""
    err_console.print(PATH_NOTE, highlight=False, markup=False, soft_wrap=True)


def backend_or_path(backend: str, path: str | None, default: str = "auto") -> str:
    """The backend of a command with ``--backend`` and its deprecated alias ``--path``:
    ``path`` (after the note) when given; both given and different is a mistake."""
    if path is None:
        return backend
    deprecated_path()
    if backend not in (default, path):
        raise FcnlabError(f"--path {path} and --backend {backend} disagree; pass only --backend.")
    return path


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
