"""The `backrub` command: the Typer app, put together from the command modules. Thin: each
command parses its flags, calls the service (backrub.service) or the core, and renders.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from backrub import __version__
from backrub.catalogue_cache import cached_catalogue
from backrub.cli import planning
from backrub.cli.common import EXIT_BAD_INPUT
from backrub.config import Settings
from backrub.core.errors import BackrubError

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue

HELP = "Coaches you through a back massage at home — your own back or a partner's."
# Commands defined in cli/planning.py; the others live in their own modules.
PLANNING_COMMANDS = frozenset({"check", "plan", "techniques"})


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"backrub {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Version."),
    ] = False,
) -> None:
    """Coaches you through a back massage at home — your own back or a partner's."""


def make_app(catalogue: "Catalogue", *, planning_only: bool = False) -> typer.Typer:
    """The whole CLI; every command finds `catalogue` as its context's object. `planning_only`
    leaves out the other commands: `main` asks for that when a planning command is run, so that
    `backrub plan` starts fast without the others' options and imports."""
    app = typer.Typer(
        name="backrub",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"obj": catalogue},
    )
    app.callback()(root)
    planning.register(app, catalogue)
    if not planning_only:
        from backrub.cli import audio_command, backup_commands, serve_command, session_commands

        session_commands.register(app)
        backup_commands.register(app)
        audio_command.register(app)
        serve_command.register(app)
    return app


def main() -> None:
    try:
        catalogue = cached_catalogue(Settings.from_env().cache_dir)
    except BackrubError as error:
        sys.stderr.write(f"Error: {error.message}\n")
        raise SystemExit(EXIT_BAD_INPUT) from None
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    make_app(catalogue, planning_only=command in PLANNING_COMMANDS)()
