"""Whole-database backups: every account and session in one portable file, restored all or nothing.

The file is JSON lines, gzip'd, and the same whether it comes from SQLite or PostgreSQL, so a
backup of one restores into the other:

    {"format": "backrub-backup", "version": 1, "schema": "0003", "created_at": "…"}
    {"table": "users", "row": {"id": "…", "email": "…", "password_hash": "$argon2id$…", …}}
    …                                    (users, sessions, logins, feedback_events, remotes)
    {"end": {"users": 2, "sessions": 14, "logins": 1, "feedback_events": 40, "remotes": 0}}

Dates are ISO 8601 in UTC; JSON columns are kept as they are; parents come before their
children. The closing row counts notice a file that was cut short. Two tables are left out
because their rows live for seconds to an hour and mean nothing on another server: failed
sign-ins (throttling counts) and the receiver's remote's waiting messages.

A backup of the schema before (0002, where a session's state was one document) is restored too:
its sessions are moved to this schema's shape as the migration to 0003 moved them.

Every row is validated before anything is written (the same rules the store applies when it
saves, plus each column's size), so a damaged or hostile file is one `BackupError` sentence.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import Integer, delete, func, insert, select
from sqlalchemy.exc import DBAPIError

from backrub.core.models import Focus
from backrub.store import saved_state
from backrub.store import validation as check
from backrub.store.engine import guarded, transaction
from backrub.store.errors import StoreError
from backrub.store.migration import SCHEMA_HEAD, migrate
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
    from collections.abc import Callable, Iterator

    from sqlalchemy import Connection, Engine, Table

FORMAT = "backrub-backup"
VERSION = 1
# The longest line read: far above any real session (a 60-minute plan is tens of kilobytes),
# far below what would exhaust memory.
MAX_LINE = 16 * 1024 * 1024
# PostgreSQL's `integer`; a larger number would be refused by the database, not by a sentence.
INT_MAX = 2**31 - 1
BATCH = 500
# JSON columns nest a few levels; the store's own check allows 50.
_DEEPEST = 64
# A reason quotes the value it refuses: only so much of it.
_REASON_MAX = 300
_GZIP_MAGIC = b"\x1f\x8b"
# The schema before this one, whose backups are restored too (see `_session_from_0002`).
OLDER_SCHEMA = "0002"
PROGRESS_COLUMNS = saved_state.Progress._fields


class BackupError(StoreError):
    """The file is not a backup this backrub can restore; nothing was restored."""


class _Problem(Exception):
    """One row's problem, turned into a `BackupError` naming the line."""


class _Seen:
    """Keys already read: duplicates are refused, and children must name a parent in the file."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.emails: set[str] = set()
        self.sessions: set[str] = set()
        self.keys: dict[str, set[object]] = {}

    def new_key(self, table: str, key: object) -> None:
        seen = self.keys.setdefault(table, set())
        if key in seen:
            raise _Problem(f"a second {table} row has the key {key!r}")
        seen.add(key)


def _fields(row: object, table: Table) -> dict[str, Any]:
    names = [c.name for c in table.columns]
    if not isinstance(row, dict) or set(row) != set(names):
        raise _Problem(f"a {table.name} row must have exactly the fields {', '.join(names)}")
    _plain_text(row)
    return row


def _plain_text(value: object, depth: int = 0) -> None:
    """Text either database keeps: valid Unicode without NUL characters (PostgreSQL refuses
    both), at any depth of a JSON column."""
    if depth > _DEEPEST:
        raise _Problem("it is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value or (not value.isascii() and _not_utf8(value)):
            raise _Problem("it holds text that is not plain Unicode")
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
        raise _Problem(f"{name} must be an ISO 8601 date and time (got {value!r})")
    try:
        parsed = datetime.fromisoformat(value)
        return check.moment(name, parsed).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Problem(
            f"{name} must be a date and time with its time zone (got {value!r})"
        ) from None


def _maybe_moment(name: str, value: object) -> datetime | None:
    return None if value is None else _moment(name, value)


def _number(name: str, value: object, low: int, high: int = INT_MAX) -> int:
    return check.whole(name, value, low, high)


def _short(name: str, value: object, longest: int) -> str:
    return check.text(name, value, longest=longest)


def _user(row: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    user_id = _short("The user id", row["id"], 32)
    seen.new_key("users", user_id)
    email = _short("The email address", row["email"], EMAIL_MAX)
    if email != email.lower() or "@" not in email:
        raise _Problem(f"the email address must be lower-case with an @ (got {email!r})")
    if email in seen.emails:
        raise _Problem(f"a second user has the email address {email!r}")
    seen.users.add(user_id)
    seen.emails.add(email)
    return {
        "id": user_id,
        "email": email,
        "password_hash": _short("The password hash", row["password_hash"], 200),
        "created_at": _moment("The account's creation time", row["created_at"]),
        "consent_at": _moment("The consent time", row["consent_at"]),
    }


def _session(row: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    session_id = _short("The session id", row["id"], 32)
    seen.new_key("sessions", session_id)
    status = check.one_of("The status", row["status"], ("active", *check.END_STATUSES))
    ended_at = _maybe_moment("The end time", row["ended_at"])
    if status != "active" and ended_at is None:
        raise _Problem(f"a {status} session must have an end time")
    focus = row["focus"]
    if not isinstance(focus, list) or not all(
        isinstance(f, dict) and set(f) == {"region", "tension"} for f in focus
    ):
        raise _Problem("the focus must be a list of {region, tension} pairs")
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
        raise _Problem(f"it belongs to {what} {value!r}, which is not in the backup")
    return value


def _login(row: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    token_hash = row["token_hash"]
    if not isinstance(token_hash, str) or len(token_hash) != 64 or not token_hash.isalnum():
        raise _Problem("a login's token hash must be 64 hexadecimal characters")
    seen.new_key("logins", token_hash)
    return {
        "token_hash": token_hash,
        "user_id": _parent(seen.users, "the user", row["user_id"]),
        "created_at": _moment("The sign-in time", row["created_at"]),
        "expires_at": _moment("The sign-in's expiry", row["expires_at"]),
    }


def _feedback(row: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    event_id = _number("The feedback id", row["id"], 1)
    seen.new_key("feedback_events", event_id)
    event = (row["kind"], row["at"], row["step"], row["region"])
    values = check.feedback(event)  # type: ignore[arg-type]
    _number("The feedback step", values["step"], 0)
    session_id = _parent(seen.sessions, "the session", row["session_id"])
    # The database keeps each event once (a unique index): a repeat is this sentence, not its
    # refusal.
    heard = seen.keys.setdefault("feedback heard", set())
    key = (session_id, *event)
    if key in heard:
        raise _Problem(
            "the same feedback event (the same word at the same moment of the same step of the "
            "same session) is in it twice"
        )
    heard.add(key)
    return {"id": event_id, "session_id": session_id, **values}


def _remote(row: dict[str, Any], seen: _Seen) -> dict[str, Any]:
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
    validate: Callable[[dict[str, Any], _Seen], dict[str, Any]]


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
_ORDER = {name: i for i, name in enumerate(TABLES)}


# ---- reading ------------------------------------------------------------------------------


def read_backup(stream: IO[bytes]) -> Iterator[tuple[Table, dict[str, Any]]]:
    """Each row of a backup (gzip'd or not) with the values to insert, validated as it is read.

    Raises `BackupError` at the first problem; a caller that inserts as it reads must do so in
    one transaction and roll it back then. The stream must be seekable.
    """
    gzipped = stream.read(2) == _GZIP_MAGIC
    stream.seek(0)
    lines = _lines(gzip.GzipFile(fileobj=stream, mode="rb") if gzipped else stream)
    number, first = next(lines, (1, None))
    older = _header(first) != SCHEMA_HEAD
    seen = _Seen()
    counts = dict.fromkeys(TABLES, 0)
    current = 0
    for number, record in lines:
        try:
            if isinstance(record, dict) and set(record) == {"end"}:
                _end(record["end"], counts)
                if next(lines, None) is not None:
                    raise _Problem("more follows the closing row counts")
                return
            if not isinstance(record, dict) or set(record) != {"table", "row"}:
                raise _Problem('each line must be {"table": …, "row": …}')
            index = _ORDER.get(record["table"]) if isinstance(record["table"], str) else None
            if index is None:
                raise _Problem(f"there is no table {record['table']!r} in a backup")
            if index < current:
                raise _Problem(
                    f"the {record['table']} rows must come before the {TABLES[current]} rows"
                )
            current = index
            kind = KINDS[index]
            row = record["row"]
            if older and kind.validate is _session:
                row = _session_from_0002(row)
            values = kind.validate(_fields(row, kind.table), seen)
        except (_Problem, StoreError) as problem:
            raise _damaged(number, problem) from None
        counts[kind.table.name] += 1
        yield kind.table, values
    raise BackupError(
        "The backup ends early, before its closing row counts: it was cut short or damaged; "
        "nothing was restored."
    )


def check_backup(stream: IO[bytes]) -> dict[str, int]:
    """Read and validate a whole backup without touching any database; rows per table."""
    counts = dict.fromkeys(TABLES, 0)
    for table, _ in read_backup(stream):
        counts[table.name] += 1
    return counts


def _damaged(number: int, problem: Exception) -> BackupError:
    reason = problem.message if isinstance(problem, StoreError) else str(problem)
    if len(reason) > _REASON_MAX:
        reason = reason[: _REASON_MAX - 1] + "…"
    return BackupError(
        f"The backup cannot be restored: line {number} is wrong ({reason.rstrip('.')}); "
        "nothing was restored."
    )


def _lines(stream: IO[bytes] | gzip.GzipFile) -> Iterator[tuple[int, object]]:
    number = 0
    while True:
        number += 1
        try:
            line = stream.readline(MAX_LINE + 1)
        except (OSError, EOFError, zlib.error):
            raise BackupError(
                f"The backup cannot be restored: it is not a backrub backup, or it is damaged "
                f"or cut short (at line {number}); nothing was restored."
            ) from None
        if not line:
            return
        if len(line) > MAX_LINE:
            raise _damaged(number, _Problem(f"it is longer than {MAX_LINE} bytes"))
        try:
            value = json.loads(
                line.decode("utf-8"), object_pairs_hook=_no_repeats, parse_constant=_no_constant
            )
        except (ValueError, RecursionError):
            if number == 1:
                raise _not_a_backup() from None
            raise _damaged(number, _Problem("it is not one JSON value")) from None
        yield number, value


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key appears twice")
    return found


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _not_a_backup() -> BackupError:
    return BackupError(
        "The file is not a backrub backup (it does not start with a backrub backup header); "
        "nothing was restored."
    )


def _session_from_0002(row: object) -> dict[str, Any]:
    """A session row of schema 0002 in this schema's shape; a row that is not one is refused
    by the fields of schema 0002, which a person mending the file has in front of them."""
    table = _TABLE[SessionRow.__tablename__]
    older = [c.name for c in table.columns if c.name not in PROGRESS_COLUMNS]
    if not isinstance(row, dict) or set(row) != set(older):
        raise _Problem(
            f"a {table.name} row of schema {OLDER_SCHEMA} must have exactly the fields "
            f"{', '.join(older)}"
        )
    doc, progress = saved_state.from_older(row["state"], row["seconds_done"])
    return {**row, "state": doc, **progress._asdict()}


def _header(first: object) -> str:
    """The schema of the backup whose first line is `first`, if this backrub restores it."""
    if not isinstance(first, dict) or first.get("format") != FORMAT:
        raise _not_a_backup()
    version, schema = first.get("version"), first.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _not_a_backup()
    if version > VERSION:
        raise BackupError(
            f"The backup was written by a newer backrub (backup format {version}; this backrub "
            f"reads format {VERSION}), so upgrade backrub to restore it; nothing was restored."
        )
    if schema in (SCHEMA_HEAD, OLDER_SCHEMA):
        return cast("str", schema)
    newer = (
        isinstance(schema, str)
        and schema.isascii()
        and schema.isdigit()
        and int(schema) > int(SCHEMA_HEAD)
    )
    todo = "upgrade backrub" if newer else "use the backrub that wrote it"
    raise BackupError(
        f"The backup holds database schema {str(schema)[:20]!r} and this backrub restores "
        f"schemas {OLDER_SCHEMA!r} and {SCHEMA_HEAD!r}, so {todo} to restore it; "
        "nothing was restored."
    )


def _end(end: object, counts: dict[str, int]) -> None:
    if not isinstance(end, dict) or end != counts:
        raise _Problem(
            f"the closing row counts do not match the rows read ({_counts_text(counts)})"
        )


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


# ---- writing ------------------------------------------------------------------------------


def write_backup(engine: Engine, path: Path, *, now: datetime) -> dict[str, int]:
    """Back the whole database up to `path`, written whole or not at all; rows per table.

    The file is created readable by its owner only (it holds password hashes). Every row is
    checked with the rules a restore applies, so a backup that was written can be restored.
    """
    migrate(engine)
    try:
        folder = path.absolute().parent
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                counts = _dump(engine, out, now)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _unwritable(path, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts


def _unwritable(path: Path, error: OSError) -> StoreError:
    return StoreError(
        f"Cannot write the backup to {path} ({error.strerror or error}); nothing was written."
    )


def _dump(engine: Engine, out: gzip.GzipFile, now: datetime) -> dict[str, int]:
    header = {"format": FORMAT, "version": VERSION, "schema": SCHEMA_HEAD, "created_at": now}
    out.write(_line(header))
    counts = dict.fromkeys(TABLES, 0)
    seen = _Seen()
    with _snapshot(engine) as conn:
        for kind in KINDS:
            key = list(kind.table.primary_key.columns)
            rows = conn.execute(
                select(kind.table).order_by(*key).execution_options(yield_per=BATCH)
            )
            for row in rows.mappings():
                plain = json.loads(_line(dict(row)))
                try:
                    kind.validate(_fields(plain, kind.table), seen)
                except (_Problem, StoreError) as problem:
                    reason = problem.message if isinstance(problem, StoreError) else problem
                    raise StoreError(
                        f"The {kind.table.name} row {row[key[0].name]!r} cannot be backed up "
                        f"({str(reason).rstrip('.')}); nothing was written."
                    ) from None
                out.write(_line({"table": kind.table.name, "row": plain}))
                counts[kind.table.name] += 1
    out.write(_line({"end": counts}))
    return counts


def _line(value: object) -> bytes:
    return (
        json.dumps(value, default=_iso, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        + "\n"
    ).encode()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} cannot be backed up")


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees every table at the same instant."""
    with guarded(engine), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # PostgreSQL's default (read committed) would let a write land between two tables.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


# ---- restoring ----------------------------------------------------------------------------


def restore_backup(engine: Engine, path: Path, *, replace: bool = False) -> dict[str, int]:
    """Restore `path` into a database at this code's schema, in one transaction; rows per table.

    The file is read twice: once to validate it whole before the database is touched, then to
    insert (validated again, so a file changed in between still cannot half-restore). The
    database must hold no accounts or sessions, unless `replace`: then everything in it is
    deleted first, in the same transaction.
    """
    with _opened(path) as stream:
        check_backup(stream)
    migrate(engine)
    try:
        with transaction(engine, write=True) as conn, _opened(path) as stream:
            if conn.dialect.name == "postgresql":
                # No other app process writes until the restore commits (SQLite's write
                # transaction holds the whole database already).
                names = ", ".join(t.name for t in Base.metadata.sorted_tables)
                conn.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
            if replace:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(delete(table))
            else:
                _refuse_non_empty(conn)
            counts = _insert(conn, read_backup(stream))
            if conn.dialect.name == "postgresql":
                _advance_sequences(conn)
    except DBAPIError as error:
        # Validation runs first; this is the database refusing what it missed.
        reason = " ".join(str(error.orig).split())[:300]
        raise StoreError(
            f"The database refused the backup ({reason}); nothing was restored."
        ) from error
    return counts


@contextmanager
def _opened(path: Path) -> Iterator[IO[bytes]]:
    try:
        stream = path.open("rb")
    except OSError as error:
        raise BackupError(f"Cannot read {path} ({error.strerror or error}).") from None
    with stream:
        yield stream


def _refuse_non_empty(conn: Connection) -> None:
    for kind in KINDS:
        if conn.execute(select(func.count()).select_from(kind.table)).scalar_one():
            raise StoreError(
                f"The database already holds {kind.table.name}; restore into an empty database, "
                "or give --replace to delete everything in it first. Nothing was restored."
            )


def _insert(conn: Connection, rows: Iterator[tuple[Table, dict[str, Any]]]) -> dict[str, int]:
    counts = dict.fromkeys(TABLES, 0)
    batch: list[dict[str, Any]] = []
    table: Table | None = None
    for row_table, values in rows:
        if table is not None and (row_table is not table or len(batch) >= BATCH):
            conn.execute(insert(table), batch)
            batch = []
        table = row_table
        batch.append(values)
        counts[row_table.name] += 1
    if table is not None and batch:
        conn.execute(insert(table), batch)
    return counts


def _advance_sequences(conn: Connection) -> None:
    """Rows were inserted with their own ids: the next id PostgreSQL hands out comes after them."""
    for kind in KINDS:
        key = list(kind.table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, Integer):
            sequence = func.pg_get_serial_sequence(kind.table.name, key[0].name)
            after = func.coalesce(select(func.max(key[0])).scalar_subquery(), 0) + 1
            conn.execute(select(func.setval(sequence, after, False)))
