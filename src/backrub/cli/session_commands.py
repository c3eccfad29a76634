"""`start`, `history`, `stats`, `remind`, `export`, `forget`: the commands that guide a session
and remember it, over the service (backrub.service). Heavy modules (the store, Textual) are
imported inside the commands.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import json
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from backrub.cli.inputs import (
    parse_findings,
    parse_request,
    parse_speed,
    parse_tension,
    parse_whole,
)
from backrub.cli.local import local_store, write_file
from backrub.cli.prompts import answers, ask_tension
from backrub.core.export import record_as_dict, stats_as_dict

if TYPE_CHECKING:
    from backrub.cli.live import Clock, LiveSession
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import Finding, PlanRequest, SessionRecord
    from backrub.store import SessionStore

NOTHING_TO_RESUME = "There is no unfinished session to resume; start one with backrub start."
NO_SESSIONS = "No sessions yet. Start one with: backrub start"

BeforeOpt = Annotated[
    str | None, typer.Option(help="Tension before, 0–10 (else asked).", metavar="N")
]
AfterOpt = Annotated[
    str | None, typer.Option(help="Tension after, 0–10 (else asked).", metavar="N")
]
NoteOpt = Annotated[str | None, typer.Option(help="A note to keep with the session.")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Don't ask to begin, and skip the note.")]
SpeedOpt = Annotated[
    str, typer.Option(help="Run the clock N times faster (demonstrations).", metavar="N")
]
VoiceOpt = Annotated[bool, typer.Option("--voice", help="Speak each cue aloud.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the last unfinished session.")]


def now_utc() -> datetime:
    return datetime.now(UTC)


def start(
    ctx: typer.Context,
    minutes: MinutesOpt = DEFAULT_MINUTES,
    mode: ModeOpt = "self",
    focus: FocusOpt = None,
    pressure: PressureOpt = "medium",
    oil: OilOpt = True,
    has: HasOpt = None,
    none: NoneOpt = False,
    before: BeforeOpt = None,
    after: AfterOpt = None,
    note: NoteOpt = None,
    yes: YesOpt = False,
    speed: SpeedOpt = "1",
    voice: VoiceOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Guide a massage live: safety check, set-up, then step by step with a timer.

    Keys: space pause/resume · n next step · e one more minute · + firmer · - softer ·
    t tender spot · g good · q stop (what you did is saved).
    """
    from backrub.cli.live import ScaledClock

    catalogue = catalogue_of(ctx)
    with reported():
        # Every flag is checked before anything is asked or saved.
        clock = ScaledClock(parse_speed(speed))
        tension_before = parse_tension(before, "--before") if before is not None else None
        if after is not None:
            parse_tension(after, "--after")
        findings = parse_findings(catalogue, has or [], none)
        request = parse_request(
            catalogue, minutes=minutes, mode=mode, focus=focus or [], pressure=pressure, oil=oil
        )
    with reported(), local_store() as store:
        if resume:
            live = service.latest_unfinished(catalogue, store)
            if live is None:
                fail(NOTHING_TO_RESUME)
            typer.echo("Picking up where you left off.")
        else:
            findings = answers(catalogue, findings, bool(has) or none)
            live = _begin(catalogue, store, request, findings, tension_before, yes)
        session = _guide(catalogue, store, live, clock, voice)
        if not session.finished:
            typer.echo("Paused here. Continue any time with: backrub start --resume")
            return
        _end(catalogue, store, live.record.id, session, after=after, note=note, yes=yes)


def _begin(
    catalogue: "Catalogue",
    store: "SessionStore",
    request: "PlanRequest",
    findings: "list[Finding]",
    tension_before: int | None,
    yes: bool,
) -> service.Live:
    """The verdict, the set-up, the tension before: a new session, saved before it starts."""
    from backrub.cli import render

    verdict = service.verdict_for(catalogue, findings)
    show(render.verdict(verdict))
    if verdict.level == "stop":
        raise typer.Exit(EXIT_STOP)
    typer.echo("\nSet the space:")
    for item in catalogue.setup:
        typer.echo(f"  ☐ {item.text}")
    if not yes and not typer.confirm("\nReady to begin?", default=True):
        typer.echo("Come back when you are ready.")
        raise typer.Exit(0)
    if tension_before is None:
        tension_before = ask_tension("How tense is your back, 0–10?", None, "--before")
    return service.start(
        catalogue, store, request, findings, tension_before=tension_before, now=now_utc()
    )


def _guide(
    catalogue: "Catalogue", store: "SessionStore", live: service.Live, clock: "Clock", voice: bool
) -> "LiveSession":
    """Play the session until it ends or is paused, saving as it goes; the session as left."""
    from backrub.cli.live import LiveSession, Speaker

    speaker = None
    if voice:
        speaker = Speaker.find()
        if speaker is None:
            typer.echo("No text-to-speech engine found (install espeak-ng): running silent.")
    save = partial(service.save_progress, store, live.record.id)
    session = LiveSession(
        catalogue=catalogue, state=live.state, clock=clock, save=save, speaker=speaker
    )
    _play(session)
    if speaker is not None:
        speaker.finish()
    return session


def _end(
    catalogue: "Catalogue",
    store: "SessionStore",
    session_id: str,
    session: "LiveSession",
    *,
    after: str | None,
    note: str | None,
    yes: bool,
) -> None:
    """The tension after and a note, then the session's outcome, saved."""
    from backrub.core import engine

    tension_after = ask_tension("How tense is your back now, 0–10?", after, "--after")
    if note is None and not yes:
        note = typer.prompt("A note for next time? (Enter to skip)", default="").strip()
    ended = service.finish(
        catalogue,
        store,
        session_id,
        active=engine.active_time(session.state, session.clock.now()),
        stopped=session.stopped_early,
        tension_after=tension_after,
        note=note or None,
        now=now_utc(),
    )
    _goodbye(ended.record)


def _play(live: "LiveSession") -> None:
    from backrub.cli.live import run_plain

    if sys.stdin.isatty() and sys.stdout.isatty():
        from backrub.cli.player import Player

        Player(live).run()
    else:
        run_plain(live)


def _goodbye(record: "SessionRecord") -> None:
    change = ""
    if record.tension_before is not None and record.tension_after is not None:
        change = f" Tension {record.tension_before} → {record.tension_after}."
    typer.echo(f"Saved.{change} Drink some water, and take it easy for a while.")


def history(
    ctx: typer.Context,
    limit: Annotated[str, typer.Option(help="Show at most N sessions.", metavar="N")] = "20",
    json_out: JsonOpt = False,
) -> None:
    """Past sessions: date, mode, minutes, tension before → after."""
    with reported():
        count = parse_whole("limit", limit, 1, 100_000)
        with local_store() as store:
            records = service.history(store, limit=count)
    if json_out:
        emit_json({"sessions": [record_as_dict(r) for r in records]})
        return
    if not records:
        typer.echo(NO_SESSIONS)
        return
    from backrub.cli import render

    show(render.history(catalogue_of(ctx), records))


def stats(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """What helps: tension drop per region, the trend, your streak, the next session."""
    with reported(), local_store() as store:
        result = service.stats(store)
    if json_out:
        emit_json(stats_as_dict(result))
        return
    if result.sessions == 0:
        typer.echo(NO_SESSIONS)
        return
    from backrub.cli import render

    typer.echo(render.stats_lines(result))
    if result.regions:
        show(render.what_helps(catalogue_of(ctx), result))


def remind(
    ctx: typer.Context,
    every: Annotated[
        str, typer.Option(help="weekly, fortnightly, monthly, or auto (from your history).")
    ] = "auto",
    at: Annotated[str, typer.Option(help="Time of day, HH:MM.")] = "19:30",
    minutes: Annotated[
        str, typer.Option(help="Session length in minutes.", metavar="15-60")
    ] = DEFAULT_MINUTES,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the .ics file.")
    ] = Path("backrub.ics"),
) -> None:
    """Write calendar reminders (an .ics file any calendar app imports)."""
    from backrub.reminders import parse_at, parse_every

    catalogue = catalogue_of(ctx)
    facts = catalogue.facts
    with reported():
        chosen = parse_every(every)
        time_of_day = parse_at(at)
        length = parse_whole("minutes", minutes, facts.min_minutes, facts.max_minutes)
        with local_store() as store:
            made = service.reminders(
                catalogue,
                store,
                every=chosen,
                at=time_of_day,
                minutes=length,
                begin="Start with backrub start.",
            )
        write_file(output, made.calendar)
    typer.echo(f"Wrote {made.every} reminders from {made.first:%a %d %b} at {at} to {output}.")


def export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write, or - for the screen.")
    ] = Path("-"),
) -> None:
    """Everything backrub stores about you, as JSON."""
    with reported():
        with local_store() as store:
            data = service.export(store)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if str(output) == "-":
            sys.stdout.write(text)
            return
        write_file(output, text.encode())
    typer.echo(f"Wrote {len(data.get('sessions', []))} session(s) to {output}.")


def forget(
    yes: Annotated[bool, typer.Option("--yes", help="Don't ask to confirm.")] = False,
) -> None:
    """Delete everything backrub stores about you."""
    with reported(), local_store() as store:
        count = len(service.history(store))
        if not yes and not typer.confirm(
            f"Delete all {count} session(s) and everything about them? This cannot be undone.",
            default=False,
        ):
            typer.echo("Nothing was deleted.")
            return
        deleted = service.forget(store)
    typer.echo(f"Deleted {deleted} session(s). backrub keeps nothing about you now.")


def register(app: typer.Typer) -> None:
    for command in (start, history, stats, remind, export, forget):
        app.command()(command)
