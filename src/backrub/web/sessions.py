"""Sessions over HTTP: plan, create, apply the player's events, finish — as `backrub start` does.

The browser is the session's clock: it tells the server the active time at which each event
happened. Nothing lives in this process between requests: every request restores the engine's
state from the store, applies its event at that active time, and saves, so any number of app
processes can serve one database and a restart loses nothing.
"""

from __future__ import annotations

from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from backrub.core import engine
from backrub.core.errors import BackrubError, BadInput, SafetyStop
from backrub.core.export import plan_as_dict, record_as_dict
from backrub.core.insights import history_for_planning
from backrub.core.models import PRESSURE_CEILINGS, Finding, Focus, PlanRequest, Step
from backrub.core.planner import build_plan, rules_for, validate_request
from backrub.core.safety import assess, make_finding
from backrub.store.events import Advance, Change, StateCache, advance_all
from backrub.web.schemas import MAX_SEQ

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from sqlalchemy import Engine

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import FeedbackEvent, Plan, SessionRecord, Verdict
    from backrub.core.planner import Rules
    from backrub.store import SessionStore
    from backrub.store.engine import Held
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
    # False when the event was older than the saved state, or the session had ended.
    accepted: bool
    # The engine's state as saved (`engine.state_as_dict`): the new one, or the one kept.
    state: dict[str, Any]
    # The record: only for a refused event (the page learns whether the session has ended; an
    # accepted one was applied to an active session, and the page has the rest).
    record: SessionRecord | None = None
    # For the full answer (None for an accepted plain event): the engine's state the timeline
    # is made from.
    live: engine.LiveState | None = None
    # What to say after feedback.
    message: str | None = None
    # For an accepted skip, extend or feedback: the `seq` of the saved state it was applied to,
    # and for each step it changed, its index and the fields that changed (the answer carries
    # only those: `answer`); None when the steps are not the same in number (all are sent).
    applied_to: int | None = None
    changed_steps: tuple[tuple[int, tuple[str, ...]], ...] | None = None
    # For a refused event: the page's view of the saved state, when already made.
    view: dict[str, Any] | None = None


# Events that record only the active time and the cues given: the timeline stays as the page
# has it, so their answer is small (`saved`) unless they are refused.
PLAIN = frozenset({"progress", "pause", "resume"})
# What they change in the saved state.
RECORDED = ("active", "anchor", "started", "fired", "seq")


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
    return load(catalogue, store, session_id)


def load(catalogue: Catalogue, store: SessionStore, session_id: str) -> Live:
    record = store.get(session_id)
    plan, saved = store.plan_and_state(session_id)
    return Live(record, plan, engine.state_from_dict(saved, catalogue))


def view(live: Live) -> dict[str, Any]:
    """`SessionView`: the record, the plan, the saved state, and the timeline the page runs."""
    state = live.state
    # A restored state is paused (no anchor), so the reading of the clock does not matter.
    return {
        "id": live.record.id,
        "record": record_as_dict(live.record),
        "plan": live.plan,
        "state": engine.state_view(state, 0.0),
        **timeline(state),
    }


def timeline(state: engine.LiveState) -> dict[str, Any]:
    """The cues, step lengths, total and active time the page runs (part of `SessionView`)."""
    return {
        "cues": [cue._asdict() for cue in engine.schedule(state)],
        "durations": list(state.durations),
        "total": engine.total(state),
        "active": state.active,
    }


def answer(outcome: Outcome) -> dict[str, Any]:
    """`EventAnswer`: the session as `SessionView` has it but for the plan, which an event never
    changes (the page has it), and the cues, with `accepted` and `message` — and,
    only for a refused event, its record (it may have ended); or, for an accepted progress save,
    pause or resume, `EventSaved` — what the page does not know."""
    if outcome.live is None:
        state = outcome.state
        return {
            "accepted": True,
            "seq": state["seq"],
            "active": state["active"],
            "fired": state["fired"],
            "message": None,
        }
    live = outcome.live
    compact = outcome.accepted and outcome.changed_steps is not None
    full = {
        # As the page's view has it (`engine.state_view`) — but for an accepted event, without
        # the steps: only the fields of those it changed go to the page, which has the rest (a
        # feedback changes a few fields of a few steps, a skip or an extend none). The rest is
        # the saved state's, the same as the view's but for how it holds the steps.
        "state": {**_without_steps(outcome.state), "format": engine.VIEW_FORMAT}
        if compact
        else outcome.view or engine.state_view(live, live.active),
        # Not the cues: the page makes them from the steps and durations as the engine does
        # (timeline.js `schedule`, tested against `engine.schedule`), and they were a third of
        # the answer, made, encoded and compressed at every feedback.
        "durations": list(live.durations),
        "total": engine.total(live),
        "active": live.active,
        "accepted": outcome.accepted,
        "message": outcome.message,
    }
    if outcome.changed_steps is not None and compact:
        steps = live.steps
        full["changed_steps"] = [
            [i, {f: getattr(steps[i], f) for f in fields}] for i, fields in outcome.changed_steps
        ]
        full["applied_to"] = outcome.applied_to
    if outcome.record is None:
        return full
    return {"id": outcome.record.id, "record": record_as_dict(outcome.record), **full}


def _without_steps(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "steps"}


def answer_json(outcome: Outcome) -> bytes:
    """The answer as the bytes FastAPI's JSONResponse would send (UTF-8, compact)."""
    return orjson.dumps(answer(outcome))


def apply_event(
    catalogue: Catalogue, store: SessionStore, session_id: str, body: EventBody
) -> Outcome:
    """Apply one of the player's events at the active time it happened, and save the result,
    in one transaction (see `apply_events`)."""
    (done,) = apply_events(catalogue, store.engine, [(store.owner, session_id, body)])
    if isinstance(done, BackrubError):
        raise done
    return done


class Remembered:
    """What the event writer keeps from one batch to the next: each session's saved state (see
    `StateCache`) and the engine's state it was made from, so that the next event restores
    neither again. Used by one thread; the oldest entries go first."""

    def __init__(self, size: int = 1024) -> None:
        self.states = StateCache(size)
        self._size = size
        self._live: dict[str, tuple[dict[str, Any], engine.LiveState]] = {}
        self._views: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def live(self, session_id: str, saved: dict[str, Any]) -> engine.LiveState | None:
        """The engine's state `saved` was made from, if it is the very snapshot kept."""
        kept = self._live.get(session_id)
        return kept[1] if kept is not None and kept[0] is saved else None

    def keep(self, session_id: str, saved: dict[str, Any], live: engine.LiveState) -> None:
        _keep(self._live, session_id, (saved, live), self._size)

    def view(
        self, session_id: str, saved: dict[str, Any], live: engine.LiveState
    ) -> dict[str, Any]:
        """The page's view of `saved` (restored as `live`), made once for each snapshot: the
        events a session turns down, each answered with it, come in runs (two devices, a
        reload's resent events)."""
        kept = self._views.get(session_id)
        if kept is not None and kept[0] is saved:
            return kept[1]
        made = engine.state_view(live, live.active)
        _keep(self._views, session_id, (saved, made), self._size)
        return made


def _keep(kept: dict[str, Any], key: str, value: object, size: int) -> None:
    """Keep `value` as the newest entry, the oldest going once there are more than `size`."""
    kept.pop(key, None)
    kept[key] = value
    if len(kept) > size:
        del kept[next(iter(kept))]


def apply_events(
    catalogue: Catalogue,
    db: Engine | Held,
    events: Sequence[tuple[str, str, EventBody]],
    remembered: Remembered | None = None,
) -> list[Outcome | BackrubError]:
    """Apply (owner, session id, event) triples in order, saved in one transaction; for each,
    the outcome or why it was not applied (a failure of the database itself raises).

    An event whose `seq` is not above the saved one, or one for a session that has ended, is
    ignored: a late or repeated send never moves a session backwards. The outcome carries the
    whole session only when the page needs it: the timeline changed, or the event was refused
    (the page then adopts what the server has). `remembered`: what earlier batches left.
    """
    # What the engine made of each event (skip, extend, feedback), for its answer.
    applied: dict[int, tuple[engine.LiveState, str | None, engine.LiveState]] = {}

    def change_for(n: int, sid: str, body: EventBody) -> Callable[[dict[str, Any]], Change]:
        def change(saved: dict[str, Any]) -> Change:
            if body.kind in PLAIN and saved.get("format") == engine.STATE_FORMAT:
                try:
                    return _recorded(saved, body)
                except (KeyError, TypeError, ValueError):
                    pass  # a damaged state (a hand-edited backup): the engine says what is wrong
            known = remembered.live(sid, saved) if remembered is not None else None
            state, message, new, restored = _applied(catalogue, saved, body, known)
            applied[n] = (state, message, restored)
            if remembered is not None:
                remembered.keep(sid, new.state, state)
            return new

        return change

    work = [
        # A record is read only for a refused event (advance_all reads it for those).
        Advance(owner, session_id, body.seq, change_for(n, session_id, body), full=False)
        for n, (owner, session_id, body) in enumerate(events)
    ]
    states = remembered.states if remembered is not None else None
    outcomes: list[Outcome | BackrubError] = []
    for n, done in enumerate(advance_all(db, work, states)):
        if isinstance(done, BackrubError):
            outcomes.append(done)
        elif n in applied:  # applied through the engine: skip, extend or feedback
            state, message, restored = applied[n]
            changed = _changed_steps(restored.steps, state.steps)
            outcomes.append(
                Outcome(done.accepted, done.state, None, state, message, restored.seq, changed)
            )
        elif done.accepted:  # a progress save, pause or resume
            outcomes.append(Outcome(done.accepted, done.state))
        else:  # refused: answered with the saved state, as the page's view has it
            sid = events[n][1]
            live = remembered.live(sid, done.state) if remembered is not None else None
            if live is None:
                live = engine.state_from_dict(done.state, catalogue)
                if remembered is not None:
                    remembered.keep(sid, done.state, live)
            view = remembered.view(sid, done.state, live) if remembered is not None else None
            outcomes.append(Outcome(False, done.state, done.record, live, view=view))
    return outcomes


def _recorded(saved: dict[str, Any], body: EventBody) -> Change:
    """A progress save, pause or resume: only the active time, the cues given and `seq` change.

    Works on the saved JSON as it is: the same as restoring the engine's state, applying the
    event and saving it again (tests/web check that), without the cost of doing so — most of
    an event's time when it was done that way.
    """
    # Time only moves forward, even when events arrive out of order from two devices.
    at = max(float(saved["active"]), body.active)
    state = {
        **saved,
        "active": at,
        "anchor": None,
        "started": True,
        "fired": sorted({*saved["fired"], *body.fired}),
        "seq": body.seq,
    }
    total = sum(float(d) for d in saved["durations"])
    return Change(seconds_done=int(min(at, total)), state=state, changed=RECORDED)


def _changed_steps(
    before: Sequence[Step], after: Sequence[Step]
) -> tuple[tuple[int, tuple[str, ...]], ...] | None:
    """For each step that differs, its index and the fields that do (re-planning keeps an
    unchanged step as it was); None when there are not as many steps as before."""
    if len(before) != len(after):
        return None
    changed = []
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        if new is old:
            continue
        # Compared field by field in C (`!=` on the very same object is quick: most fields
        # are the catalogue's ids and words, shared).
        fields = tuple(compress(Step._fields, map(ne, old, new)))
        if fields:
            changed.append((i, fields))
    return tuple(changed)


def _applied(
    catalogue: Catalogue,
    saved: dict[str, Any],
    body: EventBody,
    restored: engine.LiveState | None = None,
) -> tuple[engine.LiveState, str | None, Change, engine.LiveState]:
    """Skip, extend or feedback (or a saved state in an unknown format): through the engine.
    Also the message to say after feedback, and the state the event was applied to.
    `restored`: the engine's state `saved` was made from, when it is known."""
    if restored is None:
        restored = engine.state_from_dict(saved, catalogue)
    at = max(restored.active, body.active)
    state = restored._replace(
        active=at, anchor=None, started=True, fired=restored.fired | frozenset(body.fired)
    )
    event: FeedbackEvent | None = None
    message: str | None = None
    if body.kind == "skip":
        state = engine.skip(state, at)
    elif body.kind == "extend":
        state = engine.extend(state, at)
    elif body.kind == "feedback":
        if body.feedback is None:  # the schema already refuses this
            raise BadInput("A feedback event needs feedback: good, softer, firmer or tender.")
        state, message = engine.feedback(catalogue, state, at, body.feedback)
        if len(state.feedback) > len(restored.feedback):
            event = state.feedback[-1]
    # pause, resume and progress only record the active time and the cues given.
    state = state._replace(seq=body.seq)
    done = int(engine.position(state, at).elapsed)
    data = engine.state_as_dict(state, at, like=(restored, saved))
    # What the snapshot shares with the saved one was checked when that was saved.
    changed = [key for key, value in data.items() if value is not saved.get(key)]
    if event is None:
        return state, message, Change(done, data, changed=changed, plain=True), restored
    change = Change(done, data, feedback=event, tender=state.tender, changed=changed, plain=True)
    return state, message, change, restored


def finish(
    catalogue: Catalogue, store: SessionStore, session_id: str, body: FinishBody, *, now: datetime
) -> Live:
    """End the session: its last state, then the outcome (finished, or stopped early)."""
    live = load(catalogue, store, session_id)
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
    return load(catalogue, store, session_id)
