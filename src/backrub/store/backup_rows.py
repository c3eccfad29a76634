"""What each row of a backup must hold (store/backup.py reads, writes and restores the file).

Each table's rows are checked by the rules the store applies when it saves, plus each column's
size and the links between the rows (a child names a parent read before it, no key twice), so
that a damaged or hostile file is one sentence, before anything is written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from backrub.core.models import Focus
from backrub.store import saved_state
from backrub.store import validation as check
from backrub.store.tables import (
    EMAIL_MAX,
    Base,
    FailedLoginRow,
    FeedbackRow,
    LoginRow,
    RemoteMessageRow,
    RemoteRow,
    SessionRow,
    UserRow,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Table

# PostgreSQL's `integer`; a larger number would be refused by the database, not by a sentence.
INT_MAX = 2**31 - 1
# JSON columns nest a few levels; the store's own check allows 50.
_DEEPEST = 64
# The oldest schema whose backups are restored too (see `session_from_0002`).
OLDER_SCHEMA = "0002"
# A schema whose backups hold the same rows as this one's (0004 changed an index only).
SAME_ROWS_SCHEMA = "0003"
PROGRESS_COLUMNS = saved_state.Progress._fields
_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")


class Problem(Exception):
    """One row's problem, turned into a `BackupError` naming the line."""


class Seen:
    """Keys already read: duplicates are refused, and children must name a parent in the file."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.emails: set[str] = set()
        self.sessions: set[str] = set()
        self.keys: dict[str, set[object]] = {}

    def new_key(self, table: str, key: object) -> None:
        seen = self.keys.setdefault(table, set())
        if key in seen:
            raise Problem(f"a second {table} row has the key {key!r}")
        seen.add(key)


def fields(row: object, table: Table) -> dict[str, Any]:
    names = [c.name for c in table.columns]
    if not isinstance(row, dict) or set(row) != set(names):
        raise Problem(f"a {table.name} row must have exactly the fields {', '.join(names)}")
    _plain_text(row)
    return row


def _plain_text(value: object, depth: int = 0) -> None:
    """Text either database keeps: valid Unicode without NUL characters (PostgreSQL refuses
    both), at any depth of a JSON column."""
    if depth > _DEEPEST:
        raise Problem("it is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value or (not value.isascii() and _not_utf8(value)):
            raise Problem("it holds text that is not plain Unicode")
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_text(key, depth)
            _plain_text(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain_text(item, depth + 1)


def _not_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _moment(name: str, value: object) -> datetime:
    if not isinstance(value, str):
        raise Problem(f"{name} must be an ISO 8601 date and time (got {value!r})")
    try:
        parsed = datetime.fromisoformat(value)
        return check.moment(name, parsed).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Problem(
            f"{name} must be a date and time with its time zone (got {value!r})"
        ) from None


def _maybe_moment(name: str, value: object) -> datetime | None:
    return None if value is None else _moment(name, value)


def _number(name: str, value: object, low: int, high: int = INT_MAX) -> int:
    return check.whole(name, value, low, high)


def _short(name: str, value: object, longest: int) -> str:
    return check.text(name, value, longest=longest)


def _user(row: dict[str, Any], seen: Seen) -> dict[str, Any]:
    user_id = _short("The user id", row["id"], 32)
    seen.new_key("users", user_id)
    email = _short("The email address", row["email"], EMAIL_MAX)
    if email != email.lower() or "@" not in email:
        raise Problem(f"the email address must be lower-case with an @ (got {email!r})")
    if email in seen.emails:
        raise Problem(f"a second user has the email address {email!r}")
    seen.users.add(user_id)
    seen.emails.add(email)
    return {
        "id": user_id,
        "email": email,
        "password_hash": _short("The password hash", row["password_hash"], 200),
        "created_at": _moment("The account's creation time", row["created_at"]),
        "consent_at": _moment("The consent time", row["consent_at"]),
    }


def _session(row: dict[str, Any], seen: Seen) -> dict[str, Any]:
    session_id = _short("The session id", row["id"], 32)
    seen.new_key("sessions", session_id)
    status = check.one_of("The status", row["status"], ("active", *check.END_STATUSES))
    ended_at = _maybe_moment("The end time", row["ended_at"])
    if status != "active" and ended_at is None:
        raise Problem(f"a {status} session must have an end time")
    focus = row["focus"]
    if not isinstance(focus, list) or not all(
        isinstance(f, dict) and set(f) == {"region", "tension"} for f in focus
    ):
        raise Problem("the focus must be a list of {region, tension} pairs")
    note = row["note"]
    seen.sessions.add(session_id)
    return {
        "id": session_id,
        "owner": check.owner(row["owner"]),
        "started_at": _moment("The start time", row["started_at"]),
        "ended_at": ended_at,
        "status": status,
        "mode": check.mode(row["mode"]),
        "minutes_planned": _number("The minutes planned", row["minutes_planned"], 1),
        "seconds_done": _number("The seconds done", row["seconds_done"], 0),
        "progress_seq": _number("The progress sequence", row["progress_seq"], 0),
        "focus": check.focus([Focus(f["region"], f["tension"]) for f in focus]),
        "verdict": check.one_of("The verdict", row["verdict"], check.VERDICTS),
        "verdict_conditions": check.ids("The verdict's conditions", row["verdict_conditions"]),
        "tension_before": check.tension("Tension before", row["tension_before"]),
        "tension_after": check.tension("Tension after", row["tension_after"]),
        "note": None if note is None else check.text("The note", note, longest=check.NOTE_MAX),
        "tender": check.ids("The tender areas", row["tender"]),
        "plan": check.plain_data("plan", row["plan"]),
        # Only the document: a hand-edited state's progress and feedback have their own places.
        "state": saved_state.document(check.plain_data("session state", row["state"])),
        **saved_state.progress(row)._asdict(),
        "updated_at": _moment("The update time", row["updated_at"]),
    }


def _parent(seen: set[str], what: str, value: object) -> str:
    if not isinstance(value, str) or value not in seen:
        raise Problem(f"it belongs to {what} {value!r}, which is not in the backup")
    return value


def _login(row: dict[str, Any], seen: Seen) -> dict[str, Any]:
    token_hash = row["token_hash"]
    # As accounts.token_hash writes it: a SHA-256 in lower-case hex; any other never matches.
    if not isinstance(token_hash, str) or _TOKEN_HASH.fullmatch(token_hash) is None:
        raise Problem("a login's token hash must be 64 lower-case hexadecimal characters")
    seen.new_key("logins", token_hash)
    return {
        "token_hash": token_hash,
        "user_id": _parent(seen.users, "the user", row["user_id"]),
        "created_at": _moment("The sign-in time", row["created_at"]),
        "expires_at": _moment("The sign-in's expiry", row["expires_at"]),
    }


def _feedback(row: dict[str, Any], seen: Seen) -> dict[str, Any]:
    event_id = _number("The feedback id", row["id"], 1)
    seen.new_key("feedback_events", event_id)
    event = (row["kind"], row["at"], row["step"], row["region"])
    values = check.feedback(event)  # type: ignore[arg-type]
    _number("The feedback step", values["step"], 0)
    session_id = _parent(seen.sessions, "the session", row["session_id"])
    return {"id": event_id, "session_id": session_id, **values}


def _remote(row: dict[str, Any], seen: Seen) -> dict[str, Any]:
    code = _short("The remote's code", row["code"], 16)
    seen.new_key("remotes", code)
    return {
        "code": code,
        "session_id": _parent(seen.sessions, "the session", row["session_id"]),
        "created_at": _moment("The remote's creation time", row["created_at"]),
        "expires_at": _moment("The remote's expiry", row["expires_at"]),
    }


class _Kind(NamedTuple):
    table: Table
    validate: Callable[[dict[str, Any], Seen], dict[str, Any]]


_TABLE = Base.metadata.tables
# Parents before children: a restore inserts them in this order.
KINDS = (
    _Kind(_TABLE[UserRow.__tablename__], _user),
    _Kind(_TABLE[SessionRow.__tablename__], _session),
    _Kind(_TABLE[LoginRow.__tablename__], _login),
    _Kind(_TABLE[FeedbackRow.__tablename__], _feedback),
    _Kind(_TABLE[RemoteRow.__tablename__], _remote),
)
TABLES = tuple(kind.table.name for kind in KINDS)
# Ephemeral: an hour's throttling counts, and messages a player takes within seconds.
LEFT_OUT = (FailedLoginRow.__tablename__, RemoteMessageRow.__tablename__)
ORDER = {name: i for i, name in enumerate(TABLES)}


def session_from_0002(row: object) -> dict[str, Any]:
    """A session row of schema 0002 in this schema's shape; a row that is not one is refused
    by the fields of schema 0002, which a person mending the file has in front of them."""
    table = _TABLE[SessionRow.__tablename__]
    older = [c.name for c in table.columns if c.name not in PROGRESS_COLUMNS]
    if not isinstance(row, dict) or set(row) != set(older):
        raise Problem(
            f"a {table.name} row of schema {OLDER_SCHEMA} must have exactly the fields "
            f"{', '.join(older)}"
        )
    doc, progress = saved_state.from_older(row["state"], row["seconds_done"])
    return {**row, "state": doc, **progress._asdict()}
