"""The `backrub` command. Thin: it parses, calls the core, and renders.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.

Rich and the renderers are imported only by commands that draw something, so that
`backrub plan --json` starts fast (measured in bench/cli_start.py).
"""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from backrub import __version__
from backrub.catalogue_cache import cached_catalogue
from backrub.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_STOP,
    FocusOpt,
    HasOpt,
    JsonOpt,
    MinutesOpt,
    ModeOpt,
    NoneOpt,
    OilOpt,
    PressureOpt,
    emit_json,
    fail,
    reported,
    show,
)
from backrub.cli.inputs import parse_findings, parse_request
from backrub.config import Settings
from backrub.core.errors import BackrubError, BadInput
from backrub.core.export import as_plain, plan_as_dict, verdict_as_dict
from backrub.core.models import Verdict
from backrub.core.planner import build_plan
from backrub.core.safety import assess, parse_finding

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Finding


def ask_safety_questions(catalogue: "Catalogue") -> "list[Finding]":
    """Ask every question in turn; stop asking at the first answer that stops the session."""
    findings: list[Finding] = []
    areas = [*catalogue.focus_region_ids, "whole-back"]
    typer.echo("A few safety questions first. Answer for the person being massaged.\n")
    for condition in catalogue.conditions.values():
        if not typer.confirm(condition.question, default=False):
            continue
        if condition.effect == "avoid":
            while True:
                answer = typer.prompt(f"  Which area? ({', '.join(areas)})").strip()
                try:
                    findings.append(parse_finding(catalogue, f"{condition.id}={answer}"))
                    break
                except BadInput as error:
                    typer.echo(f"  {error.message}")
        else:
            findings.append(parse_finding(catalogue, condition.id))
        if condition.effect == "stop":
            break
    typer.echo("")
    return findings


# Commands defined in this module; the others live in session_commands.
PLANNING_COMMANDS = frozenset({"check", "plan", "techniques"})


def make_app(catalogue: "Catalogue", *, planning_only: bool = False) -> typer.Typer:
    """The whole CLI. `planning_only` leaves out the session commands: `main` asks for that when
    one of this module's commands is run, so that `backrub plan` starts fast (their options and
    imports cost about a tenth of its start-up)."""
    app = typer.Typer(
        name="backrub",
        help="Coaches you through a back massage at home — your own back or a partner's.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    facts = catalogue.facts
    effects = {
        "contraindication": "stops the session",
        "red-flag": "stops: see a doctor first",
        "cap": "light pressure only",
        "avoid": "skips that area",
    }
    condition_list = "\n\n".join(
        f"{c.id}{'=AREA' if c.effect == 'avoid' else ''} — {c.label} "
        f"({effects[c.kind if c.effect == 'stop' else c.effect]})"
        for c in catalogue.conditions.values()
    )

    def version_callback(value: bool) -> None:
        if value:
            typer.echo(f"backrub {__version__}")
            raise typer.Exit()

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option("--version", callback=version_callback, is_eager=True, help="Version."),
        ] = False,
    ) -> None:
        """Coaches you through a back massage at home — your own back or a partner's."""

    @app.command(epilog="Conditions:\n\n" + condition_list)
    def check(has: HasOpt = None, none: NoneOpt = False, json_out: JsonOpt = False) -> None:
        """Ask the safety questions (or take them from --has/--none) and give a verdict.

        Exit code 0 for clear or caution, 3 for stop, 2 for bad input.
        """
        with reported():
            findings = parse_findings(catalogue, has or [], none)
            if not has and not none:
                try:
                    findings = ask_safety_questions(catalogue)
                except typer.Abort:
                    fail("No answer was given; answer the questions, or use --has or --none.")
            result = assess(catalogue, findings)
        report_verdict(result, json_out)
        if result.level == "stop":
            raise typer.Exit(EXIT_STOP)

    @app.command()
    def plan(
        minutes: MinutesOpt = str(facts.default_minutes),
        mode: ModeOpt = "self",
        focus: FocusOpt = None,
        pressure: PressureOpt = "medium",
        oil: OilOpt = True,
        has: HasOpt = None,
        none: NoneOpt = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Plan a session: warm-up, long strokes, focus work where it is tense, finish.

        Takes the same --has flags as `check`; with none given it plans as if none apply.
        """
        with reported():
            findings = parse_findings(catalogue, has or [], none)
            request = parse_request(
                catalogue,
                minutes=minutes,
                mode=mode,
                focus=focus or [],
                pressure=pressure,
                oil=oil,
            )
            result = assess(catalogue, findings)
            if result.level == "stop":
                report_verdict(result, json_out)
                raise typer.Exit(EXIT_STOP)
            made = build_plan(catalogue, request, result)
        if json_out:
            data = plan_as_dict(catalogue, made)
            data["safety_checked"] = bool(has) or none
            emit_json(data)
            return
        from backrub.cli import render

        show(render.plan(catalogue, made, checked=bool(has) or none))

    @app.command()
    def techniques(
        technique: Annotated[
            str | None, typer.Argument(help="A technique id: show its full card.")
        ] = None,
        all_cards: Annotated[bool, typer.Option("--all", help="Show every card in full.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """The technique and region library."""
        if technique is not None and technique not in catalogue.techniques:
            fail(
                f"Unknown technique {technique!r}; choose from: {', '.join(catalogue.techniques)}."
            )
        chosen = [catalogue.techniques[technique]] if technique else []
        if json_out:
            emit_json(
                {
                    "regions": as_plain(list(catalogue.regions.values())),
                    "techniques": as_plain(chosen or list(catalogue.techniques.values())),
                }
            )
            return
        from rich.console import Group

        from backrub.cli import render

        if all_cards:
            chosen = list(catalogue.techniques.values())
        if chosen:
            show(Group(*(render.card(catalogue, t) for t in chosen)))
        else:
            show(render.library(catalogue))

    if not planning_only:
        from backrub.cli import audio_command, backup_commands, serve_command, session_commands

        session_commands.register(app, catalogue)
        backup_commands.register(app)
        audio_command.register(app, catalogue)
        serve_command.register(app)
    return app


def report_verdict(result: Verdict, json_out: bool) -> None:
    if json_out:
        emit_json(verdict_as_dict(result))
        return
    from backrub.cli import render

    show(render.verdict(result))


def main() -> None:
    try:
        catalogue = cached_catalogue(Settings.from_env().cache_dir)
    except BackrubError as error:
        sys.stderr.write(f"Error: {error.message}\n")
        raise SystemExit(EXIT_BAD_INPUT) from None
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    make_app(catalogue, planning_only=command in PLANNING_COMMANDS)()
