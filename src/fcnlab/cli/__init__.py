"""The ``fcnlab`` command line: thin Typer commands, each parsing and calling one function."""

from fcnlab.cli import deploy, train  # noqa: F401  (registers the commands)
from fcnlab.cli.base import app, parse_size


def main() -> None:
    app()


__all__ = ["app", "main", "parse_size"]
