"""`check`, `plan` and `techniques`: the commands that only read the catalogue (and, for `plan`,
the history it learns from). Rich and the renderers are imported only by commands that draw
something, so that `backrub plan --json` starts fast.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

from typing import TYPE_CHECKING, Annotated, cast

import typer

from backrub import service
from backrub.cli.common import (
    DEFAULT_MINUTES,
    EXIT_STOP,
    FocusOpt,
    HasOpt,
    JsonOpt,
    MinutesOpt,
    ModeOpt,
    NoneOpt,
    OilOpt,
    PressureOpt,
    catalogue_of,
    emit_json,
    fail,
    reported,
    show,
)
from backrub.cli.inputs import parse_findings, parse_request
from backrub.cli.local import history_store
from backrub.cli.prompts import answers, report_verdict
from backrub.core.errors import SafetyStop
from backrub.core.export import as_plain, plan_as_dict

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Finding, Plan, PlanRequest, Verdict
    from backrub.core.planner import Rules

EFFECTS = {
    "contraindication": "stops the session",
    "red-flag": "stops: see a doctor first",
    "cap": "light pressure only",
    "avoid": "skips that area",
}


def condition_list(catalogue: "Catalogue") -> str:
    """Every condition id and what it does, for `check --help`."""
    return "\n\n".join(
        f"{c.id}{'=AREA' if c.effect == 'avoid' else ''} — {c.label} "
        f"({EFFECTS[c.kind if c.effect == 'stop' else c.effect]})"
        for c in catalogue.conditions.values()
    )


def planned_or_exit(
    catalogue: "Catalogue", request: "PlanRequest", findings: "list[Finding]", json_out: bool
) -> "tuple[Plan, Rules]":
    """The plan, learning from the local history; for a stop verdict, the verdict is shown
    and the command ends with exit code 3."""
    with history_store() as store:
        try:
            return service.plan(catalogue, store, request, findings)
        except SafetyStop as stop:
            report_verdict(cast("Verdict", stop.verdict), json_out)
            raise typer.Exit(EXIT_STOP) from None


def check(
    ctx: typer.Context, has: HasOpt = None, none: NoneOpt = False, json_out: JsonOpt = False
) -> None:
    """Ask the safety questions (or take them from --has/--none) and give a verdict.

    Exit code 0 for clear or caution, 3 for stop, 2 for bad input.
    """
    catalogue = catalogue_of(ctx)
    with reported():
        findings = parse_findings(catalogue, has or [], none)
        result = service.verdict_for(catalogue, answers(catalogue, findings, bool(has) or none))
    report_verdict(result, json_out)
    if result.level == "stop":
        raise typer.Exit(EXIT_STOP)


def plan(
    ctx: typer.Context,
    minutes: MinutesOpt = DEFAULT_MINUTES,
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
    catalogue = catalogue_of(ctx)
    with reported():
        findings = parse_findings(catalogue, has or [], none)
        request = parse_request(
            catalogue, minutes=minutes, mode=mode, focus=focus or [], pressure=pressure, oil=oil
        )
        made, _ = planned_or_exit(catalogue, request, findings, json_out)
    if json_out:
        data = plan_as_dict(catalogue, made)
        data["safety_checked"] = bool(has) or none
        emit_json(data)
        return
    from backrub.cli import render

    show(render.plan(catalogue, made, checked=bool(has) or none))


def techniques(
    ctx: typer.Context,
    technique: Annotated[
        str | None, typer.Argument(help="A technique id: show its full card.")
    ] = None,
    all_cards: Annotated[bool, typer.Option("--all", help="Show every card in full.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The technique and region library."""
    catalogue = catalogue_of(ctx)
    if technique is not None and technique not in catalogue.techniques:
        fail(f"Unknown technique {technique!r}; choose from: {', '.join(catalogue.techniques)}.")
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


def register(app: typer.Typer, catalogue: "Catalogue") -> None:
    app.command(epilog="Conditions:\n\n" + condition_list(catalogue))(check)
    app.command()(plan)
    app.command()(techniques)
