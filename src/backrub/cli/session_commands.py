"""`start`, `history`, `stats`, `remind`, `export`, `forget`: the commands that guide a session
and remember it. Heavy modules (the store, Textual) are imported inside the commands.

No `from __future__ import annotations` here: Typer reads the option annotations at run time.
"""

import json
import sys
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backrub.cli.common import (
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
from backrub.cli.inputs import (
    parse_findings,
    parse_request,
    parse_speed,
    parse_tension,
    parse_whole,
)
from backrub.config import Settings
from backrub.core.export import record_as_dict, stats_as_dict
from backrub.core.models import PlanRequest
from backrub.localtime import local_zone

if TYPE_CHECKING:
    from collections.abc import Iterator

    from backrub.cli.live import LiveSession
    from backrub.core import engine
    from backrub.core.catalogue import Catalogue
    from backrub.core.models import FeedbackEvent, SessionRecord
    from backrub.store import SessionStore


@contextmanager
def local_store() -> "Iterator[SessionStore]":
    """The local profile's store, its database connections closed when the block ends."""
    from backrub.store import open_store

    store = open_store(Settings.from_env())
    try:
        yield store
    finally:
        store.close()


def now_utc() -> datetime:
    return datetime.now(UTC)


def ask_tension(question: str, given: str | None, flag: str) -> int:
    if given is not None:
        return parse_tension(given, flag)
    while True:
        answer = typer.prompt(question)
        try:
            return parse_tension(answer, "tension")
        except Exception as error:
            typer.echo(getattr(error, "message", str(error)))


def register(app: typer.Typer, catalogue: "Catalogue") -> None:
    facts = catalogue.facts

    @app.command()
    def start(
        minutes: MinutesOpt = str(facts.default_minutes),
        mode: ModeOpt = "self",
        focus: FocusOpt = None,
        pressure: PressureOpt = "medium",
        oil: OilOpt = True,
        has: HasOpt = None,
        none: NoneOpt = False,
        before: Annotated[
            str | None, typer.Option(help="Tension before, 0–10 (else asked).", metavar="N")
        ] = None,
        after: Annotated[
            str | None, typer.Option(help="Tension after, 0–10 (else asked).", metavar="N")
        ] = None,
        note: Annotated[str | None, typer.Option(help="A note to keep with the session.")] = None,
        yes: Annotated[
            bool, typer.Option("--yes", help="Don't ask to begin, and skip the note.")
        ] = False,
        speed: Annotated[
            str, typer.Option(help="Run the clock N times faster (demonstrations).", metavar="N")
        ] = "1",
        voice: Annotated[bool, typer.Option("--voice", help="Speak each cue aloud.")] = False,
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue the last unfinished session.")
        ] = False,
    ) -> None:
        """Guide a massage live: safety check, set-up, then step by step with a timer.

        Keys: space pause/resume · n next step · e one more minute · + firmer · - softer ·
        t tender spot · g good · q stop (what you did is saved).
        """
        from backrub.cli.live import LiveSession, ScaledClock, Speaker
        from backrub.core import engine

        with reported(), ExitStack() as opened:
            # Every flag is checked before anything is asked or saved.
            clock_speed = parse_speed(speed)
            tension_before = parse_tension(before, "--before") if before is not None else None
            if after is not None:
                parse_tension(after, "--after")
            findings = parse_findings(catalogue, has or [], none)
            request = parse_request(
                catalogue,
                minutes=minutes,
                mode=mode,
                focus=focus or [],
                pressure=pressure,
                oil=oil,
            )
            store = opened.enter_context(local_store())
            clock = ScaledClock(clock_speed)
            if resume:
                session_id = store.latest_unfinished()
                if session_id is None:
                    fail("There is no unfinished session to resume; start one with backrub start.")
                _, saved = store.plan_and_state(session_id)
                state = engine.state_from_dict(saved, catalogue)
                typer.echo("Picking up where you left off.")
            else:
                session_id, state = _begin(
                    catalogue,
                    store,
                    request,
                    findings,
                    bool(has) or none,
                    tension_before,
                    yes,
                    clock,
                )

            speaker = None
            if voice:
                speaker = Speaker.find()
                if speaker is None:
                    typer.echo(
                        "No text-to-speech engine found (install espeak-ng): running silent."
                    )

            def save(state: "engine.LiveState", now: float, event: "FeedbackEvent | None") -> None:
                data = engine.state_as_dict(state, now)
                done = int(engine.position(state, now).elapsed)
                if event is None:
                    store.save_progress(session_id, seq=state.seq, seconds_done=done, state=data)
                else:
                    store.add_feedback(
                        session_id,
                        event=event,
                        seq=state.seq,
                        seconds_done=done,
                        state=data,
                        tender=state.tender,
                    )

            live = LiveSession(
                catalogue=catalogue, state=state, clock=clock, save=save, speaker=speaker
            )
            _play(live)
            if speaker is not None:
                speaker.finish()
            if not live.finished:
                typer.echo("Paused here. Continue any time with: backrub start --resume")
                return
            tension_after = ask_tension("How tense is your back now, 0–10?", after, "--after")
            if note is None and not yes:
                note = typer.prompt("A note for next time? (Enter to skip)", default="").strip()
            done = int(engine.position(live.state, clock.now()).elapsed)
            store.finish(
                session_id,
                status="stopped" if live.stopped_early else "finished",
                seconds_done=done,
                tension_after=tension_after,
                note=note or None,
                ended_at=now_utc(),
            )
            record = store.get(session_id)
            _goodbye(record)

    @app.command()
    def history(
        limit: Annotated[str, typer.Option(help="Show at most N sessions.", metavar="N")] = "20",
        json_out: JsonOpt = False,
    ) -> None:
        """Past sessions: date, mode, minutes, tension before → after."""
        with reported():
            count = parse_whole("limit", limit, 1, 100_000)
            with local_store() as store:
                records = store.sessions(newest_first=True, limit=count)
        if json_out:
            emit_json({"sessions": [record_as_dict(r) for r in records]})
            return
        if not records:
            typer.echo("No sessions yet. Start one with: backrub start")
            return
        from rich.table import Table

        table = Table(header_style="bold", box=None, padding=(0, 1))
        for column in ("when", "mode", "minutes", "tension", "focus", ""):
            table.add_column(column)
        for r in records:
            when = r.started_at.astimezone().strftime("%a %d %b %Y %H:%M")
            tension = f"{_num(r.tension_before)} → {_num(r.tension_after)}"
            focus = (
                ", ".join(catalogue.regions[f.region].name for f in r.focus) or "guide's default"
            )
            status = {"active": "unfinished", "stopped": "stopped early", "finished": ""}[r.status]
            done = f"{r.seconds_done // 60}:{r.seconds_done % 60:02d} of {r.minutes_planned}:00"
            table.add_row(when, r.mode, done, tension, focus, status)
        show(table)

    @app.command()
    def stats(
        json_out: JsonOpt = False,
    ) -> None:
        """What helps: tension drop per region, the trend, your streak, the next session."""
        from backrub.core.insights import compute_stats, sparkline

        with reported(), local_store() as store:
            records = store.sessions(newest_first=False)
        result = compute_stats(records, today=date.today(), tz=local_zone())  # noqa: DTZ011
        if json_out:
            emit_json(stats_as_dict(result))
            return
        if result.sessions == 0:
            typer.echo("No sessions yet. Start one with: backrub start")
            return
        from rich.table import Table

        lines = [f"Sessions: {result.sessions}"]
        lines.append(
            "Per month: " + ", ".join(f"{month} ({count})" for month, count in result.per_month)
        )
        if result.average_drop is not None:
            lines.append(f"Tension eases by {result.average_drop:.1f} points on average.")
        before = sparkline([p.before for p in result.trend])
        after = sparkline([p.after for p in result.trend])
        lines.append(f"Before  {before}\nAfter   {after}   ({result.trend_direction})")
        lines.append(
            f"Streak: {result.streak_weeks} week(s) in a row "
            f"(longest {result.longest_streak_weeks})."
        )
        if result.next_session:
            lines.append(
                f"Next session: around {result.next_session:%a %d %b} "
                f"(every {result.interval_days} days suits you now)."
            )
        lines.append(result.message)
        typer.echo("\n".join(lines))
        if result.regions:
            table = Table(title="What helps", header_style="bold", box=None, padding=(0, 1))
            table.add_column("focus region")
            table.add_column("sessions", justify="right")
            table.add_column("average drop", justify="right")
            for effect in result.regions:
                name = catalogue.regions[effect.region].name
                table.add_row(name, str(effect.sessions), f"{effect.average_drop:.1f}")
            show(table)

    @app.command()
    def remind(
        every: Annotated[
            str, typer.Option(help="weekly, fortnightly, monthly, or auto (from your history).")
        ] = "auto",
        at: Annotated[str, typer.Option(help="Time of day, HH:MM.")] = "19:30",
        minutes: Annotated[
            str, typer.Option(help="Session length in minutes.", metavar="15-60")
        ] = str(facts.default_minutes),
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Where to write the .ics file.")
        ] = Path("backrub.ics"),
    ) -> None:
        """Write calendar reminders (an .ics file any calendar app imports)."""
        from backrub.core.insights import compute_stats
        from backrub.reminders import build_calendar, every_for_interval, parse_at, parse_every

        with reported():
            chosen = parse_every(every)
            time_of_day = parse_at(at)
            length = parse_whole("minutes", minutes, facts.min_minutes, facts.max_minutes)
            today = date.today()  # noqa: DTZ011  (the person's own day)
            with local_store() as store:
                records = store.sessions(newest_first=False)
            result = compute_stats(records, today=today, tz=local_zone())
            cadence = every_for_interval(result.interval_days) if chosen == "auto" else chosen
            first = result.next_session
            if first is None or first <= today:
                first = today + timedelta(days=1)
            description = (
                f"A {length}-minute back massage. Set the space, warm your hands, and breathe "
                f"slowly. Start with backrub start. {facts.frequency}"
            )
            data = build_calendar(
                every=cadence,
                first=first,
                at=time_of_day,
                minutes=length,
                description=description,
                now=now_utc(),
            )
            _write(output, data)
        typer.echo(f"Wrote {cadence} reminders from {first:%a %d %b} at {at} to {output}.")

    @app.command()
    def export(
        output: Annotated[
            Path, typer.Option("--output", "-o", help="File to write, or - for the screen.")
        ] = Path("-"),
    ) -> None:
        """Everything backrub stores about you, as JSON."""
        with reported():
            with local_store() as store:
                data = store.export()
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
            if str(output) == "-":
                sys.stdout.write(text)
                return
            _write(output, text.encode())
        typer.echo(f"Wrote {len(data.get('sessions', []))} session(s) to {output}.")

    @app.command()
    def forget(
        yes: Annotated[bool, typer.Option("--yes", help="Don't ask to confirm.")] = False,
    ) -> None:
        """Delete everything backrub stores about you."""
        with reported(), local_store() as store:
            count = len(store.sessions())
            if not yes and not typer.confirm(
                f"Delete all {count} session(s) and everything about them? This cannot be undone.",
                default=False,
            ):
                typer.echo("Nothing was deleted.")
                return
            deleted = store.forget()
        typer.echo(f"Deleted {deleted} session(s). backrub keeps nothing about you now.")


def _begin(
    catalogue: "Catalogue",
    store: "SessionStore",
    request: PlanRequest,
    findings: list[Any],
    answered: bool,
    tension_before: int | None,
    yes: bool,
    clock: Any,
) -> "tuple[str, engine.LiveState]":
    """Safety check, set-up, tension before, plan: a new session, saved before it starts."""
    from backrub.cli import render
    from backrub.cli.main import ask_safety_questions
    from backrub.core import engine
    from backrub.core.export import plan_as_dict
    from backrub.core.insights import history_for_planning
    from backrub.core.planner import build_plan, rules_for
    from backrub.core.safety import assess

    if not answered:
        try:
            findings = ask_safety_questions(catalogue)
        except typer.Abort:
            fail("No answer was given; answer the questions, or use --has or --none.")
    verdict = assess(catalogue, findings)
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
    history = history_for_planning(store.sessions(newest_first=False))
    plan = build_plan(catalogue, request, verdict, history)
    state = engine.new_session(plan, rules_for(request, verdict, history))
    session_id = store.create(
        started_at=now_utc(),
        mode=request.mode,
        minutes_planned=request.minutes,
        focus=request.focus,
        verdict=verdict.level,
        verdict_conditions=[r.condition.id for r in verdict.reasons],
        tension_before=tension_before,
        plan=plan_as_dict(catalogue, plan),
        state=engine.state_as_dict(state, clock.now()),
    )
    return session_id, state


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


def _num(value: int | None) -> str:
    return "–" if value is None else str(value)


def _write(path: Path, data: bytes) -> None:
    """Write all or nothing: a half-written file is never left behind."""
    import os
    import tempfile

    try:
        folder = path.resolve().parent
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    except OSError as error:
        fail(f"Cannot write {path}: {error.strerror or error}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        fail(f"Cannot write {path}: {error.strerror or error}.")
