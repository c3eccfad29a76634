"""Databases of a test run's own: PostgreSQL ones on the server at 127.0.0.1:5432 (trust auth),
migrated once and emptied between tests, and SQLite files copied from one migrated file; settings
on them.

Never skipped: when the server does not answer, the test fails and says how to start it."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from backrub.config import Settings
from backrub.store import open_store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_ADMIN_URL = f"{PG_SERVER}/postgres"


def admin_engine() -> Engine:
    """Connections to the server's own database, for creating and dropping others."""
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def database_name(prefix: str) -> str:
    """A name no other test, xdist worker or run uses at the same time."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{secrets.token_hex(6)}"


def create_database(admin: Engine, prefix: str) -> str:
    """A new, empty database; its URL."""
    name = database_name(prefix)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.fail(
            f"PostgreSQL does not answer at {PG_ADMIN_URL} ({reason}). `make test` starts it; "
            "by hand: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )
    return f"{PG_SERVER}/{name}"


def drop_database(admin: Engine, url: str) -> None:
    """Drop the database, even with connections a test left open."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """A new, empty database, dropped (even with connections still open) when the block ends."""
    admin = admin_engine()
    try:
        url = create_database(admin, prefix)
        try:
            yield url
        finally:
            drop_database(admin, url)
    finally:
        admin.dispose()


def empty_postgres(url: str) -> str:
    """The database with no tables (its public schema made anew)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    return url


# What a test could change in the schema of the run's migrated database: its tables, columns,
# defaults, constraints, indexes and storage options, and the revision Alembic recorded.
_SCHEMA = """
SELECT
  (SELECT string_agg(format('%%s %%s %%s', relname, relkind, reloptions), ';' ORDER BY relname)
     FROM pg_class WHERE relnamespace = 'public'::regnamespace),
  (SELECT string_agg(format('%%s.%%s %%s %%s %%s %%s', c.relname, a.attname,
                            format_type(a.atttypid, a.atttypmod), a.attnotnull,
                            a.attcompression, pg_get_expr(d.adbin, d.adrelid)),
                     ';' ORDER BY c.relname, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(format('%%s %%s', conname, pg_get_constraintdef(oid)), ';' ORDER BY conname)
     FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes
     WHERE schemaname = 'public'),
  (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace),
  (SELECT string_agg(version_num, ';') FROM alembic_version)
"""
_TABLES = """
SELECT string_agg(format('%%I', tablename), ', ') FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


def schema_of(engine: Engine) -> str | None:
    """The database's schema in one string; None when it has no `alembic_version` table."""
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT to_regclass('public.alembic_version')").scalar() is None:
            return None
        return repr(conn.exec_driver_sql(_SCHEMA).one())


def reset_postgres(engine: Engine, url: str, migrated: str) -> None:
    """Bring the migrated database back to its state just after migrating: no rows, and the
    schema `migrated` (made again from nothing if a test changed it). Connections a test left
    open are closed first, so that none holds a lock or sees the next test's rows."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    if schema_of(engine) == migrated:
        with engine.begin() as conn:
            tables = conn.exec_driver_sql(_TABLES).scalar_one()
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        return
    engine.dispose()
    with tempfile.TemporaryDirectory() as folder:
        migrate_at(empty_postgres(url), Path(folder))


def settings_for(tmp_path: Path, url: str | None) -> Settings:
    """Settings on the database at `url`, with the data and cache folders in `tmp_path`."""
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", database_url=url)


def with_catalogue(settings: Settings, cache: Path) -> Settings:
    """`settings` with the parsed catalogue from `cache` in its cache folder, so that an app made
    on them does not parse the data files again (the cache's own tests make their own folders)."""
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    for pickled in cache.glob("catalogue-*.pickle"):
        shutil.copy(pickled, settings.cache_dir)  # with its mode: backrub trusts only 0600
    return settings


def migrate_at(url: str, tmp_path: Path) -> str:
    """Bring the database at `url` to this code's schema, as backrub does at start; its URL.
    Every connection is closed after."""
    store = open_store(Settings(data_dir=tmp_path, cache_dir=tmp_path, database_url=url))
    store.close()
    return url


def copy_sqlite(migrated: Path, target: Path) -> str:
    """A copy of a migrated SQLite file at `target` (its folder made); its URL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated, target)
    return f"sqlite:///{target}"
