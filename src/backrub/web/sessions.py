"""Sessions over HTTP: plan, create, apply the player's events, finish — as `backrub start` does.

The browser is the session's clock: it tells the server the active time at which each event
happened. Nothing lives in this process between requests: every request restores the engine's
state from the store, applies its event at that active time, and saves, so any number of app
processes can serve one database and a restart loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from backrub.core import engine
from backrub.core.errors import BadInput, SafetyStop
from backrub.core.export import plan_as_dict, record_as_dict
from backrub.core.insights import history_for_planning
from backrub.core.models import PRESSURE_CEILINGS, Finding, Focus, PlanRequest
from backrub.core.planner import build_plan, rules_for, validate_request
from backrub.core.safety import assess, make_finding
from backrub.web.schemas import MAX_SEQ

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import FeedbackEvent, Plan, SessionRecord, Verdict
    from backrub.core.planner import Rules
    from backrub.store import SessionStore
    from backrub.web.schemas import EventBody, FindingIn, FinishBody, PlanBody, SessionBody

STOP_MESSAGE = (
    "The safety check says stop, so no massage can be planned or started; "
    "the reasons say why and what to do instead."
)


class Live(NamedTuple):
    """A stored session as the player needs it."""

    record: SessionRecord
    plan: dict[str, Any]
    state: engine.LiveState


class Outcome(NamedTuple):
    live: Live
    # False when the event was older than the saved state, or the session had ended.
    accepted: bool
    message: str | None = None


# ---- safety and planning --------------------------------------------------------------------


def findings_from(catalogue: Catalogue, items: Sequence[FindingIn]) -> list[Finding]:
    """The page's answers → findings, with the same rules as `backrub check --has`."""
    return [make_finding(catalogue, item.condition, item.region) for item in items]


def verdict_for(catalogue: Catalogue, items: Sequence[FindingIn]) -> Verdict:
    return assess(catalogue, findings_from(catalogue, items))


def plan_request(body: PlanBody) -> PlanRequest:
    return PlanRequest(
        mode=body.mode,
        minutes=body.minutes,
        focus=tuple(Focus(f.region, f.tension) for f in body.focus),
        ceiling=PRESSURE_CEILINGS[body.pressure],
        oil=body.oil,
    )


def make_plan(catalogue: Catalogue, store: SessionStore, body: PlanBody) -> tuple[Plan, Rules]:
    """The plan a session would follow, learning from this person's history as `start` does,
    so the preview and the session are the same. A stop verdict raises `SafetyStop`."""
    request = plan_request(body)
    validate_request(catalogue, request)
    verdict = verdict_for(catalogue, body.findings)
    if verdict.level == "stop":
        raise SafetyStop(verdict, STOP_MESSAGE)
    history = history_for_planning(store.sessions(newest_first=False))
    plan = build_plan(catalogue, request, verdict, history)
    return plan, rules_for(request, verdict, history)


# ---- the live session -----------------------------------------------------------------------


def create(catalogue: Catalogue, store: SessionStore, body: SessionBody, *, now: datetime) -> Live:
    """A new session, saved before it starts; nothing is stored for a stop verdict."""
    plan, rules = make_plan(catalogue, store, body)
    state = engine.new_session(plan, rules)
    session_id = store.create(
        started_at=now,
        mode=plan.request.mode,
        minutes_planned=plan.request.minutes,
        focus=plan.request.focus,
        verdict=plan.verdict.level,
        verdict_conditions=[r.condition.id for r in plan.verdict.reasons],
        tension_before=body.tension_before,
        plan=plan_as_dict(catalogue, plan),
        state=engine.state_as_dict(state, 0.0),
    )
    return load(store, session_id)


def load(store: SessionStore, session_id: str) -> Live:
    record = store.get(session_id)
    plan, saved = store.plan_and_state(session_id)
    return Live(record, plan, engine.state_from_dict(saved))


def view(live: Live) -> dict[str, Any]:
    """`SessionView`: the record, the plan, the saved state, and the timeline the page runs."""
    state = live.state
    # A restored state is paused (no anchor), so the reading of the clock does not matter.
    return {
        "id": live.record.id,
        "record": record_as_dict(live.record),
        "plan": live.plan,
        "state": engine.state_as_dict(state, 0.0),
        "cues": [cue._asdict() for cue in engine.schedule(state)],
        "durations": list(state.durations),
        "total": engine.total(state),
        "active": state.active,
    }


def apply_event(
    catalogue: Catalogue, store: SessionStore, session_id: str, body: EventBody
) -> Outcome:
    """Apply one of the player's events at the active time it happened, and save the result.

    An event whose `seq` is not above the saved one, or one for a session that has ended, is
    ignored: a late or repeated send never moves a session backwards.
    """
    live = load(store, session_id)
    saved = live.state
    if live.record.status != "active" or body.seq <= saved.seq:
        return Outcome(live, accepted=False)
    # Time only moves forward, even when events arrive out of order from two devices.
    at = max(saved.active, body.active)
    state = saved._replace(
        active=at, anchor=None, started=True, fired=saved.fired | frozenset(body.fired)
    )
    message: str | None = None
    event: FeedbackEvent | None = None
    if body.kind == "skip":
        state = engine.skip(state, at)
    elif body.kind == "extend":
        state = engine.extend(state, at)
    elif body.kind == "feedback":
        if body.feedback is None:  # the schema already refuses this
            raise BadInput("A feedback event needs feedback: good, softer, firmer or tender.")
        state, message = engine.feedback(catalogue, state, at, body.feedback)
        if len(state.feedback) > len(saved.feedback):
            event = state.feedback[-1]
    # pause, resume and progress only record the active time and the cues given.
    state = state._replace(seq=body.seq)
    done = int(engine.position(state, at).elapsed)
    data = engine.state_as_dict(state, at)
    if event is not None:
        store.add_feedback(
            session_id,
            event=event,
            seq=state.seq,
            seconds_done=done,
            state=data,
            tender=state.tender,
        )
    elif not store.save_progress(session_id, seq=state.seq, seconds_done=done, state=data):
        # Another request saved a newer state meanwhile: answer with that one.
        return Outcome(load(store, session_id), accepted=False)
    record = live.record._replace(
        seconds_done=done,
        tender=state.tender,
        feedback=(*live.record.feedback, event) if event is not None else live.record.feedback,
    )
    return Outcome(Live(record, live.plan, state), accepted=True, message=message)


def finish(store: SessionStore, session_id: str, body: FinishBody, *, now: datetime) -> Live:
    """End the session: its last state, then the outcome (finished, or stopped early)."""
    live = load(store, session_id)
    at = max(live.state.active, body.active)
    state = live.state._replace(active=at, anchor=None, started=True)
    if body.stopped:
        state = engine.stop(state, at)
    state = state._replace(seq=min(live.state.seq + 1, MAX_SEQ))
    done = int(engine.position(state, at).elapsed)
    store.save_progress(
        session_id, seq=state.seq, seconds_done=done, state=engine.state_as_dict(state, at)
    )
    # Refuses a session that has already ended (the web answers 409).
    store.finish(
        session_id,
        status="stopped" if body.stopped else "finished",
        seconds_done=done,
        tension_after=body.tension_after,
        note=body.note,
        ended_at=now,
    )
    return load(store, session_id)
