"""What every command shares: exit codes, error reporting, output, and common options.

No `from __future__ import annotations` here: Typer reads the option aliases at run time.
"""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from backrub.core.errors import BackrubError, SafetyStop

if TYPE_CHECKING:
    from rich.console import RenderableType

    from backrub.core.catalogue import Catalogue

EXIT_BAD_INPUT = 2
EXIT_STOP = 3

HasOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--has",
        help="A condition that applies (repeatable): an id from `backrub check --help`, "
        "or ID=AREA for the 'avoid' ones.",
        metavar="ID",
    ),
]
NoneOpt = Annotated[bool, typer.Option("--none", help="None of the conditions apply.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# The guide's usual session length (data/guide.toml `default_minutes`; a test keeps the two
# equal): the commands are defined before the catalogue is loaded.
DEFAULT_MINUTES = "20"
# The options that describe a session, shared by `plan` and `start`. Minutes is text so that a
# bad value gets backrub's own sentence ("minutes must be 15 to 60"), not Click's.
MinutesOpt = Annotated[str, typer.Option(help="Session length in minutes.", metavar="15-60")]
ModeOpt = Annotated[str, typer.Option(help="self or partner.")]
FocusOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="REGION=TENSION (0–10; REGION alone means 7), repeatable. Regions: shoulders, "
        "shoulder-blades, between-shoulder-blades, mid-back, sides-of-spine, lower-back.",
        metavar="REGION=TENSION",
    ),
]
PressureOpt = Annotated[str, typer.Option(help="Highest pressure: light, medium, firm or deep.")]
OilOpt = Annotated[bool, typer.Option(help="Massage oil or lotion at hand.")]


def catalogue_of(ctx: typer.Context) -> "Catalogue":
    """The catalogue `make_app` hands every command (the context's object)."""
    catalogue: Catalogue = ctx.obj
    return catalogue


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn backrub's errors into one line and an exit code (2 bad input, 3 safety stop)."""
    try:
        yield
    except SafetyStop as stop:
        # Callers print the verdict before planning; this is the last line of defence.
        fail(stop.message, EXIT_STOP)
    except BackrubError as error:
        fail(error.message)


def show(renderable: "RenderableType") -> None:
    from rich.console import Console

    Console(highlight=False).print(renderable)


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
