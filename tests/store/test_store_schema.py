"""The schema and its Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import IntegrityError

from backrub.core.models import FEEDBACK_KINDS, MODES, FeedbackEvent
from backrub.store import SCHEMA_HEAD, StoreError, make_engine, migrate, open_store
from backrub.store.migration import alembic_config, stored_revisions
from backrub.store.tables import Base

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from backrub.config import Settings
    from backrub.store import SessionStore

    Make = Callable[..., str]


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a migration could change: tables, their columns, the revision, the rows."""
    with engine.connect() as conn:
        inspector = inspect(conn)
        tables = sorted(inspector.get_table_names())
        return {
            "tables": {t: [c["name"] for c in inspector.get_columns(t)] for t in tables},
            "revisions": stored_revisions(conn),
            "rows": {
                t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}"))), key=repr)  # noqa: S608
                for t in tables
            },
        }


def test_revision_chain_is_linear() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert script.get_heads() == [SCHEMA_HEAD]
    assert [r.revision for r in revisions if r.down_revision is None] == [revisions[-1].revision]
    for newer, older in itertools.pairwise(revisions):
        assert newer.down_revision == older.revision  # one parent each, no merges
        assert not newer.is_branch_point and not newer.is_merge_point
    assert len({r.revision for r in revisions}) == len(revisions)


def test_migrations_build_exactly_the_tables(store: SessionStore) -> None:
    with store.engine.connect() as conn:
        assert stored_revisions(conn) == {SCHEMA_HEAD}
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_go_down_and_up_again(store: SessionStore) -> None:
    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    migrate(store.engine)
    assert {"sessions", "feedback_events"} <= set(inspect(store.engine).get_table_names())


def test_migrate_at_head_only_reads(store: SessionStore) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        migrate(store.engine)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    writes = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|BEGIN IMMEDIATE)", re.I)
    assert statements
    assert not [s for s in statements if writes.match(s) or "advisory" in s]


def test_a_start_at_head_does_not_load_alembic(store: SessionStore, settings: Settings) -> None:
    code = (
        "import sys\n"
        "from backrub.config import Settings\n"
        "from backrub.store import open_store\n"
        "open_store(Settings.from_env()).close()\n"
        "assert 'alembic' not in sys.modules, 'alembic was imported'\n"
    )
    env = {**os.environ, "BACKRUB_DATABASE_URL": str(settings.database_url)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_newer_schema_is_refused_and_left_untouched(
    store: SessionStore, settings: Settings, new_session: Make
) -> None:
    new_session()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    before = snapshot(store.engine)
    message = (
        "This database was written by a newer backrub (schema 0099); upgrade backrub, "
        "or point BACKRUB_DATABASE_URL elsewhere."
    )
    with pytest.raises(StoreError) as caught:
        open_store(settings)
    assert caught.value.message == message
    with pytest.raises(StoreError, match="newer backrub"):
        migrate(store.engine)
    assert snapshot(store.engine) == before


def test_tables_backrub_did_not_create_are_left_alone(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE sessions (token VARCHAR(40) PRIMARY KEY)"))
            conn.execute(text("INSERT INTO sessions VALUES ('web-login')"))
        before = snapshot(engine)
        with pytest.raises(
            StoreError, match=r"already has a 'sessions' table .* empty database\.$"
        ):
            migrate(engine)
        assert snapshot(engine) == before
    finally:
        engine.dispose()


CHEATS = [
    "UPDATE sessions SET tension_before = 11",
    "UPDATE sessions SET tension_after = -1",
    "UPDATE sessions SET status = 'paused'",
    "UPDATE sessions SET status = 'finished'",  # without ended_at
    "UPDATE sessions SET mode = 'both'",
    "UPDATE sessions SET verdict = 'stop'",
    "UPDATE sessions SET seconds_done = -1",
    "UPDATE sessions SET minutes_planned = 0",
    "UPDATE sessions SET progress_seq = -1",
    "UPDATE feedback_events SET kind = 'harder'",
    "UPDATE feedback_events SET at = -0.5",
    "UPDATE feedback_events SET step = -1",
    "UPDATE feedback_events SET session_id = 'no-such-session'",
]


@pytest.mark.parametrize("cheat", CHEATS)
def test_the_database_holds_the_rules_itself(
    store: SessionStore, new_session: Make, cheat: str
) -> None:
    session_id = new_session()
    store.add_feedback(
        session_id,
        event=FeedbackEvent("good", 1.0, 0, "upper-back"),
        seq=1,
        seconds_done=1,
        state={},
        tender=[],
    )
    before = snapshot(store.engine)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text(cheat))
    assert snapshot(store.engine) == before


def test_deleting_a_session_deletes_its_feedback(store: SessionStore, new_session: Make) -> None:
    session_id = new_session()
    store.add_feedback(
        session_id,
        event=FeedbackEvent("good", 1.0, 0, "upper-back"),
        seq=1,
        seconds_done=1,
        state={},
        tender=[],
    )
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM sessions"))
        assert conn.execute(text("SELECT count(*) FROM feedback_events")).scalar_one() == 0


def test_every_core_value_fits_the_schema(store: SessionStore, new_session: Make) -> None:
    for mode in MODES:
        session_id = new_session(mode=mode)
        for n, kind in enumerate(FEEDBACK_KINDS):
            store.add_feedback(
                session_id,
                event=FeedbackEvent(kind, float(n), n, "upper-back"),
                seq=n + 1,
                seconds_done=n,
                state={},
                tender=[],
            )
        store.finish(
            session_id,
            status="stopped",
            seconds_done=9,
            tension_after=10,
            note=None,
            ended_at=datetime(2025, 3, 2, tzinfo=UTC),
        )
    assert sorted(s.mode for s in store.sessions()) == sorted(MODES)
