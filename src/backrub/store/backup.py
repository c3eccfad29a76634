"""Whole-database backups: every account and session in one portable file, restored all or nothing.

The file is JSON lines, gzip'd, and the same whether it comes from SQLite or PostgreSQL, so a
backup of one restores into the other:

    {"format": "backrub-backup", "version": 1, "schema": "0004", "created_at": "…"}
    {"table": "users", "row": {"id": "…", "email": "…", "password_hash": "$argon2id$…", …}}
    …                                    (users, sessions, logins, feedback_events, remotes)
    {"end": {"users": 2, "sessions": 14, "logins": 1, "feedback_events": 40, "remotes": 0}}

Dates are ISO 8601 in UTC; JSON columns are kept as they are; parents come before their
children. The closing row counts notice a file that was cut short. Two tables are left out
because their rows live for seconds to an hour and mean nothing on another server: failed
sign-ins (throttling counts) and the receiver's remote's waiting messages.

Backups of the schemas before are restored too: 0003's rows are this schema's (0004 changed an
index only); 0002's sessions (a session's state was one document) are moved to this schema's
shape as the migration to 0003 moved them.

Every row is validated before anything is written (store/backup_rows.py: the same rules the
store applies when it saves, plus each column's size), so a damaged or hostile file is one
`BackupError` sentence.
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
from typing import IO, TYPE_CHECKING, Any, cast

from sqlalchemy import Integer, delete, func, insert, select
from sqlalchemy.exc import DBAPIError

from backrub.store.backup_rows import (
    KINDS,
    OLDER_SCHEMA,
    ORDER,
    SAME_ROWS_SCHEMA,
    TABLES,
    Problem,
    Seen,
    fields,
    session_from_0002,
)
from backrub.store.engine import guarded, transaction
from backrub.store.errors import StoreError
from backrub.store.migration import SCHEMA_HEAD, migrate
from backrub.store.tables import Base, SessionRow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Connection, Engine, Table

FORMAT = "backrub-backup"
VERSION = 1
# The longest line read: far above any real session (a 60-minute plan is tens of kilobytes),
# far below what would exhaust memory.
MAX_LINE = 16 * 1024 * 1024
BATCH = 500
# A reason quotes the value it refuses: only so much of it.
_REASON_MAX = 300
_GZIP_MAGIC = b"\x1f\x8b"


class BackupError(StoreError):
    """The file is not a backup this backrub can restore; nothing was restored."""


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
    older = _header(first) == OLDER_SCHEMA
    seen = Seen()
    counts = dict.fromkeys(TABLES, 0)
    current = 0
    for number, record in lines:
        try:
            if isinstance(record, dict) and set(record) == {"end"}:
                _end(record["end"], counts)
                if next(lines, None) is not None:
                    raise Problem("more follows the closing row counts")
                return
            if not isinstance(record, dict) or set(record) != {"table", "row"}:
                raise Problem('each line must be {"table": …, "row": …}')
            index = ORDER.get(record["table"]) if isinstance(record["table"], str) else None
            if index is None:
                raise Problem(f"there is no table {record['table']!r} in a backup")
            if index < current:
                raise Problem(
                    f"the {record['table']} rows must come before the {TABLES[current]} rows"
                )
            current = index
            kind = KINDS[index]
            row = record["row"]
            if older and kind.table.name == SessionRow.__tablename__:
                row = session_from_0002(row)
            values = kind.validate(fields(row, kind.table), seen)
        except BackupError:
            raise  # the file itself is damaged (read past the closing row): a sentence already
        except (Problem, StoreError) as problem:
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
            # Found while reading a line, or the gzip trailer after the last one.
            where = f"after line {number - 1}" if number > 1 else "at its start"
            raise BackupError(
                f"The backup cannot be restored: it is not a backrub backup, or it is damaged "
                f"or cut short ({where}); nothing was restored."
            ) from None
        if not line:
            return
        if len(line) > MAX_LINE:
            raise _damaged(number, Problem(f"it is longer than {MAX_LINE} bytes"))
        try:
            value = json.loads(
                line.decode("utf-8"), object_pairs_hook=_no_repeats, parse_constant=_no_constant
            )
        except (ValueError, RecursionError):
            if number == 1:
                raise _not_a_backup() from None
            raise _damaged(number, Problem("it is not one JSON value")) from None
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
    if schema in (SCHEMA_HEAD, SAME_ROWS_SCHEMA, OLDER_SCHEMA):
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
        f"schemas {OLDER_SCHEMA!r}, {SAME_ROWS_SCHEMA!r} and {SCHEMA_HEAD!r}, so {todo} to "
        "restore it; nothing was restored."
    )


def _end(end: object, counts: dict[str, int]) -> None:
    if not isinstance(end, dict) or end != counts:
        raise Problem(f"the closing row counts do not match the rows read ({_counts_text(counts)})")


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
    seen = Seen()
    with _snapshot(engine) as conn:
        for kind in KINDS:
            key = list(kind.table.primary_key.columns)
            rows = conn.execute(
                select(kind.table).order_by(*key).execution_options(yield_per=BATCH)
            )
            for row in rows.mappings():
                plain = json.loads(_line(dict(row)))
                try:
                    kind.validate(fields(plain, kind.table), seen)
                except (Problem, StoreError) as problem:
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
