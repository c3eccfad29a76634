"""The statements a batch of player events runs, on the database driver's own cursor.

A progress save is four statements in one transaction, and through SQLAlchemy's `execute` each
cost several times the database's own work: caching and processing of compiled statements,
events, result objects (bench/RESULTS.md, "The events' statements on the driver's cursor").
These few run on the driver's cursor inside the transaction SQLAlchemy opened, with what
SQLAlchemy would do for them done here: values converted as the columns' types convert them
(JSON text on SQLite, the UTC timestamp as SQLite keeps it), and a failure of the database
raised as SQLAlchemy raises it (`OperationalError`, `IntegrityError`, …), so that
`engine.guarded` words it as for any other statement.

Everything else the store does goes through SQLAlchemy as before; the tests in tests/store run
both ways of writing against the same rows (a save here, read back through SQLAlchemy).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from backrub.store.engine import on_driver

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

# As SQLAlchemy's SQLite dialect stores a DateTime (`UTCDateTime` gives it UTC without offset).
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


class SavedRow(NamedTuple):
    """A session's row as a batch reads it: all but the plan, the record and the document."""

    id: str
    owner: str
    status: str
    progress_seq: int
    seconds_done: int
    tender: list[str]
    updated_at: datetime
    active: float
    started: bool
    fired: list[str]


# Only the driver's placeholders (`?` or `%s`, as many as ids) are put into these.
_ROWS = (
    "SELECT id, owner, status, progress_seq, seconds_done, tender, updated_at, active, started, "
    "fired FROM sessions WHERE id IN ({marks}) ORDER BY id"
)
_DOCUMENTS = "SELECT id, state FROM sessions WHERE id IN ({marks})"
_SQLITE_SET = (
    "UPDATE sessions SET progress_seq = ?, seconds_done = ?, active = ?, started = ?, "
    "fired = ?, tender = ?, updated_at = ?"
)
_SQLITE_SAVE = f"{_SQLITE_SET} WHERE id = ? AND owner = ?"
_SQLITE_SAVE_WHOLE = f"{_SQLITE_SET}, state = ? WHERE id = ? AND owner = ?"
_HEARD = "INSERT INTO feedback_events (session_id, kind, at, step, region) VALUES ({marks})"
# PostgreSQL: as the writes, a batch's feedback in one parameter: as many INSERTs (executemany,
# pipelined) were a fifth of the writer's time. Inserted in the order given (the ordinality),
# so that their ids keep the order heard.
_PG_HEARD = (
    "INSERT INTO feedback_events (session_id, kind, at, step, region) "
    "SELECT b.session_id, b.kind, b.at, b.step, b.region FROM ROWS FROM (json_to_recordset("
    "CAST(%s AS json)) AS (session_id text, kind text, at float8, step integer, region text)) "
    "WITH ORDINALITY AS b(session_id, kind, at, step, region, n) ORDER BY b.n"
)
# PostgreSQL: a batch's rows in one parameter, as a JSON array: as many UPDATEs (executemany)
# cost the database server a parse and plan each, three times as long for a batch.
_PG_ROWS = (
    "FROM json_to_recordset(CAST(%s AS json)) AS b(id text, owner text, seq integer, "
    "done integer, active float8, started boolean, fired json, tender json, saved_at timestamptz"
)
_PG_SET = (
    "UPDATE sessions AS s SET progress_seq = b.seq, seconds_done = b.done, active = b.active, "
    "started = b.started, fired = b.fired, tender = b.tender, updated_at = b.saved_at"
)
_PG_WHERE = " WHERE s.id = b.id AND s.owner = b.owner"
_PG_SAVE = f"{_PG_SET} {_PG_ROWS}){_PG_WHERE}"
_PG_SAVE_WHOLE = f"{_PG_SET}, state = b.state {_PG_ROWS}, state json){_PG_WHERE}"


class Progress(NamedTuple):
    """What a batch writes for one session (`write`); `state` only when the document changed."""

    id: str
    owner: str
    seq: int
    done: int
    active: float
    started: bool
    fired: list[str]
    tender: list[str]
    saved_at: datetime
    state: dict[str, Any] | None


def read_rows(conn: Connection, ids: Sequence[str]) -> list[SavedRow]:
    """The sessions' rows, in id order, locked on PostgreSQL (so two processes' batches, each
    locking in this order, cannot deadlock)."""
    if not ids:
        return []
    sqlite = conn.dialect.name == "sqlite"
    sql = _ROWS.format(marks=_marks(sqlite, len(ids)))
    rows = on_driver(conn, sql if sqlite else sql + " FOR UPDATE", list(ids), fetch=True)
    if not sqlite:  # the driver has made the JSON, booleans and times already
        return [SavedRow._make(row) for row in rows]
    return [
        SavedRow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            orjson.loads(r[5]),
            datetime.fromisoformat(r[6]).replace(tzinfo=UTC),
            r[7],
            bool(r[8]),
            orjson.loads(r[9]),
        )
        for r in rows
    ]


def read_documents(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    """The sessions' state documents, by id (as stored: a damaged one may not be a dict)."""
    if not ids:
        return {}
    sqlite = conn.dialect.name == "sqlite"
    rows = on_driver(conn, _DOCUMENTS.format(marks=_marks(sqlite, len(ids))), list(ids), fetch=True)
    return {r[0]: orjson.loads(r[1]) if sqlite else r[1] for r in rows}


def write(conn: Connection, rows: Sequence[Progress]) -> None:
    """Save the rows: two statements at most, the sessions whose document changed and the
    others, each writing the same columns for all its rows."""
    for whole in (False, True):
        batch = [r for r in rows if (r.state is not None) is whole]
        if not batch:
            continue
        if conn.dialect.name == "postgresql":
            keys = Progress._fields if whole else Progress._fields[:-1]
            json_rows = orjson.dumps([dict(zip(keys, r, strict=False)) for r in batch]).decode()
            on_driver(conn, _PG_SAVE_WHOLE if whole else _PG_SAVE, [json_rows])
        else:
            values = [_sqlite_values(r) for r in batch]
            on_driver(conn, _SQLITE_SAVE_WHOLE if whole else _SQLITE_SAVE, values, many=True)


def _sqlite_values(r: Progress) -> tuple[Any, ...]:
    """A row's values as SQLAlchemy's SQLite dialect writes them: JSON as text, the time as
    UTC text."""
    saved_at = r.saved_at.astimezone(UTC).strftime(SQLITE_TIME)
    fired, tender = orjson.dumps(r.fired).decode(), orjson.dumps(r.tender).decode()
    values = (r.seq, r.done, r.active, r.started, fired, tender, saved_at)
    if r.state is None:
        return (*values, r.id, r.owner)
    return (*values, orjson.dumps(r.state).decode(), r.id, r.owner)


def insert_feedback(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store feedback rows (session_id, kind, at, step, region), in one statement."""
    if conn.dialect.name == "postgresql":
        on_driver(conn, _PG_HEARD, [orjson.dumps(list(rows)).decode()])
        return
    values = [(r["session_id"], r["kind"], r["at"], r["step"], r["region"]) for r in rows]
    on_driver(conn, _HEARD.format(marks=_marks(True, 5)), values, many=True)


@cache
def _marks(sqlite: bool, count: int) -> str:
    return ", ".join(["?" if sqlite else "%s"] * count)
