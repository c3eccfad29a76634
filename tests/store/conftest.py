"""Real databases for the store tests: a fresh SQLite file per test, and a PostgreSQL database of
this test run's own on 127.0.0.1:5432, emptied before each test and dropped at the end.

PostgreSQL tests are never skipped: when the server is down they fail and say how to start it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select
from store_states import engine_state

from backrub.config import Settings
from backrub.core.models import Focus
from backrub.store import SessionStore, open_store
from backrub.store.tables import FeedbackRow, SessionRow
from pg_databases import empty_postgres, temporary_database

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqlalchemy import Connection

BACKENDS = ["sqlite", "postgresql"]
START = datetime(2025, 3, 1, 19, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, dropped when the run ends."""
    with temporary_database("backrub_test") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the run's PostgreSQL database with no tables."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/backrub.db"
    return empty_postgres(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", database_url=db_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[SessionStore]:
    opened = open_store(settings)
    yield opened
    opened.close()


@pytest.fixture
def other(store: SessionStore) -> SessionStore:
    """Someone else's store on the same database."""
    return SessionStore(store.engine, owner="someone-else")


def session_values(**overrides: Any) -> dict[str, Any]:
    """What `SessionStore.create` takes, with every field set to something other than a default."""
    values: dict[str, Any] = {
        "started_at": START,
        "mode": "partner",
        "minutes_planned": 30,
        "focus": (Focus("upper-back", 8), Focus("lower-back", 5)),
        "verdict": "caution",
        "verdict_conditions": ("sunburn",),
        "tension_before": 7,
        "plan": {"minutes": 30, "steps": [{"index": 0, "pressure": 2, "seconds": 120}]},
        # As the engine saves a session it has just made: not started, seq 0.
        "state": engine_state(),
    }
    values.update(overrides)
    return values


@pytest.fixture
def values() -> Callable[..., dict[str, Any]]:
    return session_values


@pytest.fixture
def new_session(store: SessionStore) -> Callable[..., str]:
    """Create a session in `store` (or the store given as `into=`) and return its id."""

    def make(into: SessionStore | None = None, **overrides: Any) -> str:
        return (into or store).create(**session_values(**overrides))

    return make


def row_counts(conn: Connection, owner: str | None = None) -> tuple[int, int]:
    """Sessions and feedback events stored, for one owner or for everyone."""
    sessions = select(func.count()).select_from(SessionRow)
    events = select(func.count()).select_from(FeedbackRow).join(SessionRow)
    if owner is not None:
        sessions = sessions.where(SessionRow.owner == owner)
        events = events.where(SessionRow.owner == owner)
    return conn.execute(sessions).scalar_one(), conn.execute(events).scalar_one()


@pytest.fixture
def counts(store: SessionStore) -> Callable[..., tuple[int, int]]:
    def count(owner: str | None = None) -> tuple[int, int]:
        with store.engine.connect() as conn:
            return row_counts(conn, owner)

    return count
