"""Which database, how to connect to it, and how a transaction is opened.

SQLite (the default, in the data directory) runs in WAL mode so readers never wait for a writer,
and every write transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front,
waiting up to the busy timeout, instead of failing with "database is locked" when two processes
upgrade their read locks at the same moment.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from backrub.store.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import URL, Connection, Engine

    from backrub.config import Settings

BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
# Connections each process keeps to PostgreSQL (`make_engine`).
POOL_SIZE = 15
# Set on a connection whose transaction will write (see `transaction`).
_WRITE = "backrub_write"
_USE = "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"


def database_url(settings: Settings) -> str:
    """`BACKRUB_DATABASE_URL`, or an SQLite file in the data directory (created if missing)."""
    if settings.database_url:
        return settings.database_url
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create backrub's data folder {settings.data_dir} ({exc.strerror}); "
            "set BACKRUB_DATA_DIR to a folder you can write to."
        ) from exc
    return f"sqlite:///{settings.sqlite_file}"


def _bad_url(why: str) -> StoreError:
    return StoreError(f"BACKRUB_DATABASE_URL is not a database URL backrub can use: {why}; {_USE}.")


def _checked_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        # The text is not echoed: it may hold a password.
        raise _bad_url("it cannot be read as a URL") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
            raise _bad_url("it names no database file, and an in-memory database keeps nothing")
        return url
    # Hosting services often hand out postgres:// or postgresql:// URLs; psycopg 3 serves both.
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg")
    raise _bad_url(f"the driver {url.drivername!r} is not supported")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# The JSON columns (a session's plan and state) are read and written at every player event.
# A database error's text never quotes the values sent (notes, addresses, hashes): health data
# and credentials have no place in a traceback or a log.
_OPTIONS: dict[str, Any] = {
    "json_serializer": _json_text,
    "json_deserializer": orjson.loads,
    "hide_parameters": True,
}


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database. Connects lazily: nothing happens until first use."""
    url = _checked_url(database_url(settings))
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, **_OPTIONS)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # An unreachable host should be one clear error after seconds, not a hang.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    # pre_ping: a server restart must not turn into an error in a long-running `backrub serve`.
    # A fixed pool, the same ceiling as SQLAlchemy's default (5 + 10 overflow): overflow
    # connections are closed when given back, so under load each burst opened new server
    # backends, and the server spent its time starting them.
    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=0,
        **_OPTIONS,
    )
    event.listen(engine, "connect", _postgres_connect)
    return engine


def _postgres_connect(dbapi_connection: Any, _record: object) -> None:
    # A session's state (several KB, stored out of line and compressed) is written again at
    # many saves: lz4 spares the database server's CPU. Where the server lacks it the default
    # stays, asked first so that the server's log does not get an error for every connection.
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
            found = cursor.fetchone()
            if found is not None and found[0]:
                cursor.execute("SET default_toast_compression = 'lz4'")
        dbapi_connection.commit()
    except dbapi_connection.Error:
        dbapi_connection.rollback()


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Let SQLAlchemy (`_sqlite_begin`) emit BEGIN, rather than the sqlite3 module, which begins
    # only before DML and so cannot take the write lock before a transaction's first read.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # Safe in WAL mode: a crash of the process loses nothing committed; a power cut may lose
        # the last transactions but never corrupts the file.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    writes = conn.get_execution_options().get(_WRITE, False)
    # SQLAlchemy's recipe for SQLite: the "begin" event emits BEGIN itself.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """One transaction, committed when the block ends and rolled back if it raises.

    Database failures become a `StoreError` sentence; nothing is half-written.
    """
    lock = _write_lock(engine) if write else nullcontext()
    with lock, guarded(engine), engine.connect() as conn:
        if write:
            conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


# SQLite lets one writer in at a time; the others sleep and retry in its busy handler, which
# under load turns into second-long waits. Within one process the writers queue on a lock
# instead (other processes still meet the busy handler). PostgreSQL locks rows: no lock here.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _write_lock(engine: Engine) -> AbstractContextManager[Any]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(engine)
        if lock is None:
            lock = _WRITE_LOCKS[engine] = threading.RLock()
    return lock


@contextmanager
def guarded(engine: Engine) -> Iterator[None]:
    """Turn a failure of the database itself into one sentence that says what to do."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        yield
    except OperationalError as exc:
        raise StoreError(
            f"The database {where} cannot be used ({_reason(exc)}); check BACKRUB_DATABASE_URL, "
            "that the database is running and writable, and try again."
        ) from exc
    except IntegrityError as exc:
        # Validation runs first; this is the schema's own check catching what it missed.
        raise StoreError(
            f"The database refused the change ({_reason(exc)}); nothing was saved."
        ) from exc


def _reason(exc: DBAPIError) -> str:
    text = str(exc.orig).strip() or type(exc.orig).__name__
    return " ".join(text.splitlines()[0].split()).rstrip(".")
