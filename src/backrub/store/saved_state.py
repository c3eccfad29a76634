"""A session's saved state, stored in two parts: the document that changes only with the timeline
(steps, rules, durations, tender regions), and the few fields every progress save changes (the
active time, whether it has started, the cues given, `seq`), in columns of their own.

Why: the player saves at every step, every 15 s and at every feedback. When the state was one
document, each save rewrote all of it — several KB, which PostgreSQL compresses and keeps out of
line — to change a number and a list. Now a progress save, pause or resume writes only the small
columns, and the document only when the timeline changed (skip, extend, feedback).

The feedback heard is not in either part: it is the session's record (`feedback_events`), and in
the document it was a list that grew all session and was written again at every save.

Callers of the store see one state, as `engine.state_as_dict` makes it; `split` and `join` are
the store's own. Schema 0003 moved older states into this shape (`migrations/versions/0003…`),
and a backup of schema 0002 is moved the same way when it is restored: both use `from_older`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from backrub.store.errors import StoreError

# The state's fields that live in columns of their own (`seq` is `progress_seq`; `anchor` is
# always None in a saved state: a restored session starts paused).
PROGRESS = frozenset({"active", "anchor", "started", "fired", "seq"})
# Kept by the store apart from the state, as rows.
HEARD = "feedback"
# The longest a session can run, with every step extended: far above any real one (a day).
ACTIVE_MAX = 86400.0 * 7
# A cue's id: its kind and step ("check:12"), far below this.
CUE_ID_MAX = 100


class Progress(NamedTuple):
    """The columns a progress save writes (besides `progress_seq` and `seconds_done`)."""

    active: float
    started: bool
    fired: list[str]


def document(state: dict[str, Any]) -> dict[str, Any]:
    """The part of `state` kept as one document: all but the progress and the feedback heard."""
    return {k: v for k, v in state.items() if k not in PROGRESS and k != HEARD}


def progress(state: dict[str, Any]) -> Progress:
    """The progress columns of `state`, checked (a bad value is a `StoreError` sentence)."""
    try:
        active, started, fired = state["active"], state["started"], state["fired"]
    except KeyError as missing:
        raise StoreError(
            f"The session state has no {missing.args[0]!r}; nothing was saved."
        ) from None
    return Progress(_active(active), _started(started), _fired(fired))


def split(state: dict[str, Any]) -> tuple[dict[str, Any], Progress]:
    """`state` as the store keeps it: the document, and the progress columns."""
    return document(state), progress(state)


def from_older(state: object, seconds_done: int) -> tuple[object, Progress]:
    """A state saved whole (schema 0002 and before) in this shape. Lenient: a state the store
    cannot read keeps its document as it was (the session says so when it is opened), and
    its progress is taken from the row."""
    doc = document(state) if isinstance(state, dict) else state
    try:
        return doc, progress(state)  # type: ignore[arg-type]
    except (StoreError, TypeError):
        done = seconds_done if type(seconds_done) is int and seconds_done > 0 else 0
        return doc, Progress(float(done), done > 0, [])


def join(
    doc: dict[str, Any], active: float, started: bool, fired: list[str], seq: int
) -> dict[str, Any]:
    """The state the store's callers see, from its two parts and the row's `progress_seq`. A
    document that is not one (a damaged row) adds nothing: the engine then says the saved
    session cannot be read."""
    return {
        **(doc if isinstance(doc, dict) else {}),
        "active": active,
        "anchor": None,
        "started": started,
        "fired": fired,
        "seq": seq,
    }


def _active(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= ACTIVE_MAX
    ):
        raise StoreError(
            f"The active time must be a number of seconds from 0 to {ACTIVE_MAX:.0f} "
            f"(got {value!r}); nothing was saved."
        )
    return float(value)


def _started(value: object) -> bool:
    if not isinstance(value, bool):
        raise StoreError(f"Whether the session has started must be true or false (got {value!r}).")
    return value


def _fired(value: object) -> list[str]:
    # Checked here at every save, so only what the column needs: short strings.
    if not isinstance(value, list) or not all(
        isinstance(cue, str) and 0 < len(cue) <= CUE_ID_MAX for cue in value
    ):
        raise StoreError(
            f"The cues given must be a list of cue ids of 1 to {CUE_ID_MAX} characters "
            f"(got {str(value)[:100]}); nothing was saved."
        )
    return value
