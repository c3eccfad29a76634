"""What a session does, for the CLI and the web alike: plan with history, start, save progress,
finish, the history and what it says, reminders, export and forget.

It takes core values (a `PlanRequest`, findings) and plain ones, and a `SessionStore`; the
adapters turn their flags or request bodies into those, and its answers into text or JSON. No
framework is imported here, and the store only for its type: `backrub plan` without a database
never loads one. The engine is imported by the functions that run a session, so that planning
alone starts fast.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from backrub.core.errors import SafetyStop
from backrub.core.export import plan_as_dict
from backrub.core.insights import compute_stats, history_for_planning
from backrub.core.planner import build_plan, rules_for, validate_request
from backrub.core.safety import assess
from backrub.localtime import local_zone

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import time

    from backrub.core import engine
    from backrub.core.catalogue import Catalogue
    from backrub.core.insights import Stats
    from backrub.core.models import (
        FeedbackEvent,
        Finding,
        Plan,
        PlanRequest,
        SessionRecord,
        Verdict,
    )
    from backrub.core.planner import Rules
    from backrub.reminders import Every
    from backrub.store import SessionStore

STOP_MESSAGE = (
    "The safety check says stop, so no massage can be planned or started; "
    "the reasons say why and what to do instead."
)
# The store keeps sequence numbers in a 32-bit column.
MAX_SEQ = 2**31 - 1


class Live(NamedTuple):
    """A stored session: its record, its plan (as saved) and the engine's state."""

    record: SessionRecord
    plan: dict[str, Any]
    state: engine.LiveState


class Reminders(NamedTuple):
    every: Every
    first: date
    calendar: bytes


# ---- safety and planning --------------------------------------------------------------------


def verdict_for(catalogue: Catalogue, findings: Sequence[Finding]) -> Verdict:
    return assess(catalogue, findings)


def plan(
    catalogue: Catalogue,
    store: SessionStore | None,
    request: PlanRequest,
    findings: Sequence[Finding],
) -> tuple[Plan, Rules]:
    """The plan a session would follow and the rules it keeps, learning from this person's
    history in `store` (None: no history yet), so a preview and the session it starts are the
    same. A stop verdict raises `SafetyStop`, carrying the verdict."""
    validate_request(catalogue, request)
    verdict = assess(catalogue, findings)
    if verdict.level == "stop":
        raise SafetyStop(verdict, STOP_MESSAGE)
    history = None
    if store is not None:
        history = history_for_planning(store.sessions(newest_first=False))
    return build_plan(catalogue, request, verdict, history), rules_for(request, verdict, history)


# ---- a session --------------------------------------------------------------------------------


def start(
    catalogue: Catalogue,
    store: SessionStore,
    request: PlanRequest,
    findings: Sequence[Finding],
    *,
    tension_before: int | None,
    now: datetime,
) -> Live:
    """A new session, planned with history and saved before it starts; nothing is stored for
    a stop verdict."""
    from backrub.core import engine

    made, rules = plan(catalogue, store, request, findings)
    state = engine.new_session(made, rules)
    session_id = store.create(
        started_at=now,
        mode=request.mode,
        minutes_planned=request.minutes,
        focus=request.focus,
        verdict=made.verdict.level,
        verdict_conditions=[r.condition.id for r in made.verdict.reasons],
        tension_before=tension_before,
        plan=plan_as_dict(catalogue, made),
        # Not started yet: the clock's reading does not matter.
        state=engine.state_as_dict(state, 0.0),
    )
    return load(catalogue, store, session_id)


def load(catalogue: Catalogue, store: SessionStore, session_id: str) -> Live:
    from backrub.core import engine

    record = store.get(session_id)
    saved_plan, saved = store.plan_and_state(session_id)
    return Live(record, saved_plan, engine.state_from_dict(saved, catalogue))


def latest_unfinished(catalogue: Catalogue, store: SessionStore) -> Live | None:
    """The newest session that has not ended, to resume; None when there is none."""
    session_id = store.latest_unfinished()
    return None if session_id is None else load(catalogue, store, session_id)


def save_progress(
    store: SessionStore,
    session_id: str,
    state: engine.LiveState,
    now: float,
    event: FeedbackEvent | None = None,
) -> None:
    """Save a running session's state as of `now` (the clock the state runs on), with the
    feedback just heard, if any."""
    from backrub.core import engine

    data = engine.state_as_dict(state, now)
    done = int(engine.position(state, now).elapsed)
    if event is None:
        store.save_progress(session_id, seq=state.seq, seconds_done=done, state=data)
        return
    store.add_feedback(
        session_id, event=event, seq=state.seq, seconds_done=done, state=data, tender=state.tender
    )


def finish(
    catalogue: Catalogue,
    store: SessionStore,
    session_id: str,
    *,
    active: float,
    stopped: bool,
    tension_after: int | None,
    note: str | None,
    now: datetime,
) -> Live:
    """End the session at `active` seconds of session time: its last state, then the outcome
    (finished, or stopped early). A session that has already ended is refused (`StoreError`)."""
    from backrub.core import engine

    live = load(catalogue, store, session_id)
    at = max(live.state.active, active)
    state = live.state._replace(active=at, anchor=None, started=True)
    if stopped:
        state = engine.stop(state, at)
    state = state._replace(seq=min(live.state.seq + 1, MAX_SEQ))
    done = int(engine.position(state, at).elapsed)
    store.save_progress(
        session_id, seq=state.seq, seconds_done=done, state=engine.state_as_dict(state, at)
    )
    store.finish(
        session_id,
        status="stopped" if stopped else "finished",
        seconds_done=done,
        tension_after=tension_after,
        note=note,
        ended_at=now,
    )
    return load(catalogue, store, session_id)


# ---- what the history says ------------------------------------------------------------------


def history(store: SessionStore, *, limit: int | None = None) -> list[SessionRecord]:
    """This person's sessions, newest first."""
    return store.sessions(newest_first=True, limit=limit)


def stats(store: SessionStore, *, today: date | None = None) -> Stats:
    """What helps, the trend, the streak and the next session, by the person's own days."""
    day = today or _today()
    return compute_stats(store.sessions(newest_first=False), today=day, tz=local_zone())


def reminders(
    catalogue: Catalogue,
    store: SessionStore,
    *,
    every: Every | Literal["auto"],
    at: time,
    minutes: int | None,
    begin: str,
    now: datetime | None = None,
) -> Reminders:
    """Recurring calendar reminders (.ics) from the suggested next session on (tomorrow at the
    earliest); `auto` follows the interval the history suggests. `begin` says how to start."""
    from backrub.reminders import build_calendar, every_for_interval

    facts = catalogue.facts
    length = minutes if minutes is not None else facts.default_minutes
    today = _today()
    result = stats(store, today=today)
    cadence = every_for_interval(result.interval_days) if every == "auto" else every
    first = result.next_session
    if first is None or first <= today:
        first = today + timedelta(days=1)
    description = (
        f"A {length}-minute back massage. Set the space, warm your hands, and breathe "
        f"slowly. {begin} {facts.frequency}"
    )
    calendar = build_calendar(
        every=cadence,
        first=first,
        at=at,
        minutes=length,
        description=description,
        now=now or datetime.now(UTC),
    )
    return Reminders(cadence, first, calendar)


# ---- the person's data ----------------------------------------------------------------------


def export(store: SessionStore) -> dict[str, Any]:
    """Everything stored about this person, as JSON-ready data."""
    return store.export()


def forget(store: SessionStore) -> int:
    """Delete every session of this person and everything about them; how many sessions."""
    return store.forget()


def delete(store: SessionStore, session_id: str) -> None:
    store.delete(session_id)


def _today() -> date:
    return date.today()  # noqa: DTZ011  (the person's own day)
