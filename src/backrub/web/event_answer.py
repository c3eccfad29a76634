"""The answer to one of the player's events (`POST /api/v1/sessions/{id}/events`), as the page
reads it: small for a progress save, the changed timeline for a skip, extend or feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from backrub.core import engine
from backrub.core.export import record_as_dict

if TYPE_CHECKING:
    from backrub.service.events import Outcome


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
        else engine.state_view(live, live.active),
        # Not the cues: the page makes them from the steps and durations as the engine does
        # (timeline.js `schedule`, tested against `engine.schedule`).
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
