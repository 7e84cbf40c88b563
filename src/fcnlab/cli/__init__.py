"""The ``fcnlab`` command line: thin Typer commands, each parsing and calling one function.

Every command is registered here and only here, in help order, from the modules that define
them as plain functions: :mod:`fcnlab.cli.deploy` (predict, export, serve),
:mod:`fcnlab.cli.explain` (explain), :mod:`fcnlab.cli.bench` (bench) and
:mod:`fcnlab.cli.train` (models, summary, train, eval, report, data check). Each is wrapped
in :func:`~fcnlab.cli.base.user_errors` on the way in.
The library packages never import this one; it imports them.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from fcnlab.cli import bench, deploy, explain, train
from fcnlab.cli.base import app, parse_size, user_errors

#: ``fcnlab NAME``: every top-level command, in help order.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("predict", deploy.predict),
    ("export", deploy.export),
    ("serve", deploy.serve),
    ("explain", explain.explain_command),
    ("bench", bench.bench_command),
    ("models", train.models),
    ("summary", train.summary),
    ("train", train.train),
    ("eval", train.eval_),
    ("report", train.report),
)
#: ``fcnlab GROUP NAME``: the command groups, (group, help, its commands).
GROUPS: tuple[tuple[str, str, tuple[tuple[str, Callable[..., None]], ...]], ...] = (
    ("data", "Inspect datasets.", (("check", train.data_check),)),
)


def _register(root: typer.Typer) -> None:
    for name, command in COMMANDS:
        root.command(name)(user_errors(command))
    for group_name, help_text, commands in GROUPS:
        group = typer.Typer(help=help_text, no_args_is_help=True)
        for name, command in commands:
            group.command(name)(user_errors(command))
        root.add_typer(group, name=group_name)


_register(app)


def main() -> None:
    app()


__all__ = ["COMMANDS", "GROUPS", "app", "main", "parse_size"]
