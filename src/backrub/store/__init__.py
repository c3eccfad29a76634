"""Session history in SQLite (the default) or PostgreSQL, through SQLAlchemy and Alembic.

Nothing happens at import: `open_store(settings)` builds the engine, brings the schema up to date
and returns a `SessionStore`, whose methods return core types (`SessionRecord`, …).
"""

from __future__ import annotations

from backrub.store.engine import database_url, make_engine
from backrub.store.errors import NoSuchSession, StoreError
from backrub.store.migration import SCHEMA_HEAD, migrate
from backrub.store.remote import RemoteStore
from backrub.store.repository import SessionStore, open_store

__all__ = [
    "SCHEMA_HEAD",
    "NoSuchSession",
    "RemoteStore",
    "SessionStore",
    "StoreError",
    "database_url",
    "make_engine",
    "migrate",
    "open_store",
]
