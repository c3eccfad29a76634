"""Alembic's environment for backrub's schema.

`backrub.store.migrate` passes an open connection (in `config.attributes["connection"]`) whose
transaction it owns. Run from the `alembic` command line instead (see `../alembic.ini`), this
connects to the database that BACKRUB_DATABASE_URL — or the default SQLite file — names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import context

from backrub.store.tables import Base

if TYPE_CHECKING:
    from sqlalchemy import Connection


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: later revisions rebuild its tables in batches.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_command_line() -> None:
    from backrub.config import Settings
    from backrub.store.engine import database_url, make_engine

    settings = Settings.from_env()
    if context.is_offline_mode():
        context.configure(
            url=database_url(settings),
            target_metadata=Base.metadata,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    _run_from_command_line()
