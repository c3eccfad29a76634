"""Bringing a database to the schema this code expects, with Alembic — only when needed.

Every start of backrub calls `migrate`. When the database is already at `SCHEMA_HEAD` (nearly
always) that costs one small query and Alembic is not even imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from backrub.store.engine import transaction
from backrub.store.errors import StoreError
from backrub.store.tables import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

# The newest revision in migrations/versions/ (a test keeps the two equal).
SCHEMA_HEAD = "0004"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
# Held while one process migrates a PostgreSQL database, so two starting at once take turns.
_PG_LOCK_KEY = 0x6261636B72756221  # "backrub!"


def stored_revisions(conn: Connection) -> set[str]:
    """The revision(s) the database is at; empty for a database backrub has never set up."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return set()
    # A constant table name, not input.
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608 # nosec B608
    return {str(r) for r in rows.scalars()}


def migrate(engine: Engine) -> None:
    """Upgrade the database to this code's schema, unless it is there already.

    A database written by a newer backrub, or holding tables backrub did not create, is left
    exactly as it is and reported as a `StoreError`.
    """
    with transaction(engine, write=False) as conn:
        if stored_revisions(conn) == {SCHEMA_HEAD}:
            return
    _upgrade(engine)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config()
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        # Again, under the lock: another process may have migrated meanwhile.
        current = stored_revisions(conn)
        if current == {SCHEMA_HEAD}:
            return
        newer = sorted(current - known)
        if newer:
            raise StoreError(
                f"This database was written by a newer backrub (schema {', '.join(newer)}); "
                "upgrade backrub, or point BACKRUB_DATABASE_URL elsewhere."
            )
        if not current:
            _refuse_foreign_tables(conn)
        config.attributes["connection"] = conn
        # Runs inside this transaction: on PostgreSQL the DDL commits or rolls back as a whole.
        command.upgrade(config, "head")


def _refuse_foreign_tables(conn: Connection) -> None:
    ours = set(Base.metadata.tables)
    clash = sorted(ours & set(inspect(conn).get_table_names()))
    if clash:
        raise StoreError(
            f"The database already has a {clash[0]!r} table that backrub did not create; "
            "point BACKRUB_DATABASE_URL at an empty database."
        )
