"""The player's events: each applied at the active time it happened, by the page's clock, and
saved in one transaction.

The browser is the session's clock: it tells the server the active time at which each event
happened. Nothing lives in a process between events: each restores the engine's state from the
store, applies its event at that active time, and saves, so any number of app processes can serve
one database and a restart loses nothing.
"""

from __future__ import annotations

from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from backrub.core import engine
from backrub.core.errors import BadInput
from backrub.core.models import Step
from backrub.store.events import Change

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.catalogue import Catalogue
    from backrub.core.models import FeedbackEvent, FeedbackKind, SessionRecord
    from backrub.store import SessionStore

EventKind = Literal["progress", "pause", "resume", "skip", "extend", "feedback"]


class PlayerEvent(NamedTuple):
    """One of the player's events, as the page sends it."""

    kind: EventKind
    # Seconds of active session time at which it happened, by the page's clock.
    active: float
    # Rises by one with each event the page sends: a late or repeated one is ignored.
    seq: int
    # Cues the page has given since its last event.
    fired: Sequence[str] = ()
    # For kind "feedback": what the receiver said.
    feedback: FeedbackKind | None = None


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


# Events that record only the active time and the cues given: the timeline stays as the page
# has it, so their answer is small (`saved`) unless they are refused.
PLAIN = frozenset({"progress", "pause", "resume"})
# What they change in the saved state.
RECORDED = ("active", "anchor", "started", "fired", "seq")


def apply_event(
    catalogue: Catalogue, store: SessionStore, session_id: str, body: PlayerEvent
) -> Outcome:
    """Apply one of the player's events at the active time it happened, and save the result,
    in one transaction.

    An event whose `seq` is not above the saved one, or one for a session that has ended, is
    ignored: a late or repeated send never moves a session backwards. The outcome carries the
    whole session only when the page needs it: the timeline changed, or the event was refused
    (the page then adopts what the server has).
    """
    # What the engine made of a skip, extend or feedback, for its answer.
    applied: list[tuple[engine.LiveState, str | None, engine.LiveState]] = []

    def change(saved: dict[str, Any]) -> Change:
        if body.kind in PLAIN and saved.get("format") == engine.STATE_FORMAT:
            try:
                return _recorded(saved, body)
            except (KeyError, TypeError, ValueError):
                pass  # a damaged state (a hand-edited backup): the engine says what is wrong
        state, message, new, restored = _applied(catalogue, saved, body)
        applied.append((state, message, restored))
        return new

    done = store.advance(session_id, seq=body.seq, change=change, full=False)
    if applied:
        state, message, restored = applied[0]
        changed = _changed_steps(restored.steps, state.steps)
        return Outcome(done.accepted, done.state, None, state, message, restored.seq, changed)
    if done.accepted:  # a progress save, pause or resume
        return Outcome(True, done.state)
    # Refused: answered with the saved state, as the page's view has it.
    live = engine.state_from_dict(done.state, catalogue)
    return Outcome(False, done.state, done.record, live)


def _recorded(saved: dict[str, Any], body: PlayerEvent) -> Change:
    """A progress save, pause or resume: only the active time, the cues given and `seq` change.

    Works on the saved JSON as it is: the same as restoring the engine's state, applying the
    event and saving it again (tests/web check that), without restoring the plan's steps.
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
        fields = tuple(compress(Step._fields, map(ne, old, new)))
        if fields:
            changed.append((i, fields))
    return tuple(changed)


def _applied(
    catalogue: Catalogue, saved: dict[str, Any], body: PlayerEvent
) -> tuple[engine.LiveState, str | None, Change, engine.LiveState]:
    """Skip, extend or feedback (or a saved state in an unknown format): through the engine.
    Also the message to say after feedback, and the state the event was applied to."""
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
        if body.feedback is None:
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
        return state, message, Change(done, data, changed=changed), restored
    change = Change(done, data, feedback=event, tender=state.tender, changed=changed)
    return state, message, change, restored
