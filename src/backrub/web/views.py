"""Core values as the plain JSON data the API answers with, in the CLI's `--json` shapes, and a
session as the player runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backrub.core import engine
from backrub.core.export import as_plain, record_as_dict
from backrub.core.models import PRESSURE_CEILINGS, PRESSURE_WORDS

if TYPE_CHECKING:
    from backrub.core.catalogue import Catalogue
    from backrub.service import Live


def catalogue_as_dict(catalogue: Catalogue) -> dict[str, Any]:
    """Everything the pages draw and ask from: regions (with their shapes on the back map),
    techniques (with their motion), the safety questions, the set-up checklist, the facts."""
    return {
        "regions": as_plain(list(catalogue.regions.values())),
        "techniques": as_plain(list(catalogue.techniques.values())),
        "conditions": as_plain(list(catalogue.conditions.values())),
        "setup": as_plain(list(catalogue.setup)),
        "facts": as_plain(catalogue.facts),
        "pressure_words": {str(level): word for level, word in PRESSURE_WORDS.items()},
        "pressure_ceilings": dict(PRESSURE_CEILINGS),
    }


def session_view(live: Live) -> dict[str, Any]:
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
