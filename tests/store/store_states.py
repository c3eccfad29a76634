"""Session states shaped as the engine saves them (`engine.state_as_dict`), for the store tests
(not a test module: the tests and `store_writer.py` import it).

The store keeps a state in two parts (store/saved_state.py): the document, and the progress —
`active`, `started`, `fired` — in columns of its own, with `seq` as the row's `progress_seq`. It
requires the progress in every state it is given, and gives back `anchor` None, `seq` as saved
and no `feedback` (kept as rows): `as_stored` is what a user of the store expects back.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from backrub.core.engine import STATE_FORMAT

if TYPE_CHECKING:
    from collections.abc import Iterable

# The fields the store keeps in columns of their own (`seq` is `progress_seq`).
PROGRESS_FIELDS = ("active", "anchor", "started", "fired", "seq")


def step(position: int, region: str = "upper-back", seconds: int = 120) -> dict[str, Any]:
    """One step of a plan, as `state_as_dict` saves it: what was decided, not its words."""
    return {
        "phase": "warm-up" if position == 0 else "focus",
        "region": region,
        "technique": "effleurage",
        "pressure": 2,
        "seconds": seconds,
        "start": 120 * position,
        "check_in": position == 1,
    }


def engine_state(
    *,
    active: float = 0.0,
    started: bool | None = None,
    fired: Iterable[str] = (),
    seq: int = 0,
    tender: Iterable[str] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A saved state as the engine makes it: a two-step plan, `active` seconds in (started once
    there is active time, unless told), the cues `fired` given; `fields` added or replaced."""
    return {
        "steps": [step(0), step(1, "lower-back")],
        "rules": {
            "mode": "partner",
            "limit": 3,
            "avoid_regions": ["neck"],
            "avoid_tools": [],
            "region_caps": [["upper-back", 2]],
        },
        "ceiling": 3,
        "durations": [120.0, 120.0],
        "active": active,
        "anchor": None,
        "started": active > 0 if started is None else started,
        "stopped": False,
        "fired": sorted(fired),
        "tender": list(tender),
        "seq": seq,
        "format": STATE_FORMAT,
        **fields,
    }


def as_stored(state: dict[str, Any], *, seq: int | None = None) -> dict[str, Any]:
    """What the store gives back for `state` saved with `seq` (the state's own by default):
    the same, but `anchor` None, `seq` the save's and no `feedback`."""
    kept = {k: v for k, v in state.items() if k != "feedback"}
    return {**kept, "anchor": None, "seq": state["seq"] if seq is None else seq}


def document(state: dict[str, Any]) -> dict[str, Any]:
    """The part of `state` the `sessions.state` column holds: no progress, no feedback."""
    return {k: v for k, v in state.items() if k not in PROGRESS_FIELDS and k != "feedback"}


def state_at(seq: int, *, active: float | None = None, **fields: Any) -> dict[str, Any]:
    """The state a progress save with `seq` sends: `seq` seconds in unless told, started."""
    return engine_state(active=float(seq) if active is None else active, seq=seq, **fields)


def whole(state: dict[str, Any], *heard: dict[str, Any]) -> dict[str, Any]:
    """`state` as the engine saved it up to schema 0002: one document, the feedback heard in
    it (`heard`: each event as a dict of kind, at, step and region)."""
    return {**state, "feedback": list(heard)}


def one_sentence(message: str) -> bool:
    """True when `message` is one plain sentence: a capital, no line break, one full stop at
    its end and none between."""
    return (
        message[:1].isupper()
        and message.endswith(".")
        and "\n" not in message
        and re.search(r"[.!?]\s+[A-Z]", message) is None
    )
