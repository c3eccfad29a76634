"""The store tests' fixtures, on the databases of tests/conftest.py (`db_url`, `settings`): each
test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select
from store_states import engine_state

from backrub.core.models import Focus
from backrub.store import SessionStore, open_store
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Connection

    from backrub.config import Settings

START = datetime(2025, 3, 1, 19, 30, tzinfo=UTC)


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
