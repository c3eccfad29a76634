"""Checks on every value before it is written, so bad data is refused whole, never half-saved.

Each failure is a `StoreError` whose sentence says what is allowed. The tables' CHECK constraints
hold the same rules a second time.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from backrub.core.models import FEEDBACK_KINDS, MODES
from backrub.store.errors import StoreError
from backrub.store.tables import OWNER_MAX, REGION_MAX

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backrub.core.models import FeedbackEvent, Focus

VERDICTS = ("clear", "caution")
END_STATUSES = ("finished", "stopped")
NOTE_MAX = 2000


def _choices(values: Sequence[str]) -> str:
    quoted = [repr(v) for v in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def one_of(name: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise StoreError(f"{name} must be {_choices(allowed)} (got {value!r}).")
    return value


def whole(name: str, value: object, low: int, high: int | None = None) -> int:
    # bool is an int to Python, never to a person.
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    ):
        return value
    allowed = f"from {low} to {high}" if high is not None else f"of {low} or more"
    raise StoreError(f"{name} must be a whole number {allowed} (got {value!r}).")


def tension(name: str, value: object) -> int | None:
    return None if value is None else whole(name, value, 0, 10)


def text(name: str, value: object, *, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{name} must be some text (got {value!r}).")
    if len(value) > longest:
        raise StoreError(f"{name} must be at most {longest} characters.")
    if "\x00" in value or (not value.isascii() and not _encodes(value)):
        # Neither database keeps a NUL or a lone surrogate (an undecodable byte of a command line).
        raise StoreError(f"{name} must be plain text, without NUL characters or lone surrogates.")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def note(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return text("The note", value, longest=NOTE_MAX).strip()


def owner(value: object) -> str:
    return text("The owner", value, longest=OWNER_MAX)


def moment(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise StoreError(f"{name} must be a date and time (got {value!r}).")
    if value.utcoffset() is None:
        raise StoreError(f"{name} must carry its time zone (got {value.isoformat()}).")
    return value


def ids(name: str, values: object) -> list[str]:
    """A list of region or condition ids, duplicates dropped, order kept."""
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple | set | frozenset):
        raise StoreError(f"{name} must be a list of ids (got {values!r}).")
    seen: dict[str, None] = {}
    for value in values:
        seen[text(f"Each of {name.lower()}", value, longest=REGION_MAX)] = None
    return list(seen)


def focus(values: Sequence[Focus]) -> list[dict[str, Any]]:
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise StoreError(
            f"The focus must be a list of regions with their tension (got {values!r})."
        )
    out: dict[str, int] = {}
    for item in values:
        try:
            region, level = item
        except (TypeError, ValueError):
            raise StoreError(
                f"Each focus must be a region and its tension (got {item!r})."
            ) from None
        out[text("A focus region", region, longest=REGION_MAX)] = whole(
            f"The tension of {region}", level, 0, 10
        )
    return [{"region": r, "tension": t} for r, t in out.items()]


def feedback(event: FeedbackEvent) -> dict[str, Any]:
    try:
        kind, at, step, region = event
    except (TypeError, ValueError):
        raise StoreError(f"Feedback must be a FeedbackEvent (got {event!r}).") from None
    ok_at = isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
    if not ok_at or at < 0:
        raise StoreError(f"The feedback time must be 0 seconds or more (got {at!r}).")
    return {
        "kind": one_of("The feedback kind", kind, FEEDBACK_KINDS),
        "at": float(at),
        "step": whole("The feedback step", step, 0),
        "region": text("The feedback region", region, longest=REGION_MAX),
    }


def mode(value: object) -> str:
    return one_of("The mode", value, MODES)


def plain_data(name: str, value: object) -> dict[str, Any]:
    """A dict that JSON keeps exactly: string keys, finite numbers (tuples come back as lists)."""
    if not isinstance(value, dict):
        raise StoreError(f"The {name} must be a dictionary of plain data (got {type(value)}).")
    if _round_trips(value):
        return value
    problem = _json_problem(value)
    if problem:
        raise StoreError(f"The {name} must be plain JSON data, but {problem}.")
    return value


def _round_trips(value: dict[str, Any]) -> bool:
    """True when JSON gives `value` back as it is: the common case, found in a fraction of the
    walk's time (a session's state is saved at every event). Anything else — a tuple, a
    non-finite number, a key that is not text, a type JSON does not have, a depth orjson will
    not go to — is left to the walk, which names the problem or lets it pass."""
    try:
        return bool(orjson.loads(orjson.dumps(value)) == value)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return False


def _json_problem(value: object, depth: int = 0) -> str | None:
    if depth > 50:
        return "it is nested too deeply"
    if value is None or isinstance(value, str | bool):
        return None
    if isinstance(value, int):
        # What the database's JSON (orjson) can write: 64-bit integers.
        return None if -(2**63) <= value < 2**64 else f"it holds the number {value}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"it holds the number {value}"
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := _json_problem(v, depth + 1))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"it has a key that is not text ({key!r})"
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"it holds a {type(value).__name__}"
