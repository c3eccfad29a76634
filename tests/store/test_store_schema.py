"""The schema and its Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from store_states import as_stored, document, engine_state, state_at
from store_states import whole as old_shape

from backrub.core.errors import BackrubError
from backrub.core.models import FEEDBACK_KINDS, MODES, FeedbackEvent
from backrub.store import (
    SCHEMA_HEAD,
    SessionStore,
    StoreError,
    make_engine,
    migrate,
    open_store,
)
from backrub.store.events import Change
from backrub.store.migration import alembic_config, stored_revisions
from backrub.store.tables import Base, FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Connection, Engine

    from backrub.config import Settings

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
    with moved_to(store.engine, "base"):
        pass
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


def test_tables_backrub_did_not_create_are_left_alone(empty_settings: Settings) -> None:
    engine = make_engine(empty_settings)
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
        state=state_at(1),
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
        state=state_at(1),
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
                state=state_at(n + 1, fired=[f"check:{n}"]),
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


# ---- 0003: a session's progress in columns of its own ---------------------------------------

OLD_START = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)


def old_session(session_id: str, state: object, **columns: Any) -> dict[str, Any]:
    """A sessions row as schema 0002 kept it: the state whole, no progress columns."""
    return {
        "id": session_id,
        "owner": "local",
        "started_at": OLD_START,
        "ended_at": None,
        "status": "active",
        "mode": "partner",
        "minutes_planned": 30,
        "seconds_done": 0,
        "progress_seq": 0,
        "focus": [{"region": "upper-back", "tension": 8}],
        "verdict": "clear",
        "verdict_conditions": [],
        "tension_before": 6,
        "tension_after": None,
        "note": None,
        "tender": [],
        "plan": {"minutes": 30, "steps": [{"index": 0, "pressure": 2, "seconds": 120}]},
        "state": state,
        "updated_at": OLD_START,
        **columns,
    }


def whole(state: dict[str, Any], *events: FeedbackEvent) -> dict[str, Any]:
    """`state` as the engine saved it up to schema 0002: with the feedback heard."""
    return old_shape(state, *(e._asdict() for e in events))


SOFTER = FeedbackEvent("softer", 40.0, 0, "upper-back")
TENDER = FeedbackEvent("tender", 95.5, 1, "lower-back")
GOOD = FeedbackEvent("good", 1500.25, 1, "lower-back")
# Sessions as schema 0002 saved them (ids in the order they are checked).
RUNNING = whole(
    state_at(7, active=95.5, fired=["check:0", "half:0", "step:1"], tender=["lower-back"]),
    SOFTER,
    TENDER,
)
ENDED = whole(
    state_at(12, active=1790.0, fired=["check:0", "check:1", "finish"], ceiling=2, stopped=True),
    GOOD,
)
FRESH = whole(engine_state())
OLD_ROWS = {
    "a-running": old_session(
        "a-running", RUNNING, seconds_done=95, progress_seq=7, tender=["lower-back"]
    ),
    "b-ended": old_session(
        "b-ended",
        ENDED,
        status="finished",
        ended_at=OLD_START + timedelta(minutes=31),
        seconds_done=1790,
        progress_seq=12,
        tension_after=2,
    ),
    "c-fresh": old_session("c-fresh", FRESH),
    # Damaged states (a hand-edited database): their progress is taken from the row.
    "d-no-active": old_session(
        "d-no-active",
        {k: v for k, v in state_at(4, fired=["check:0"]).items() if k != "active"},
        seconds_done=42,
        progress_seq=4,
    ),
    "e-bad-fired": old_session(
        "e-bad-fired", state_at(3) | {"fired": "check:0"}, seconds_done=30, progress_seq=3
    ),
    "f-a-list": old_session("f-a-list", ["not", "a", "state"], seconds_done=0),
}
OLD_FEEDBACK = [("a-running", SOFTER), ("a-running", TENDER), ("b-ended", GOOD)]


@contextmanager
def moved_to(engine: Engine, revision: str, *, up: bool = False) -> Iterator[Connection]:
    """Alembic's downgrade (or upgrade) to `revision`, in a transaction the block goes on in."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(config, revision)
        expected = set() if revision == "base" else {revision}
        assert stored_revisions(conn) == expected
        yield conn


@pytest.fixture
def at_0002(empty_settings: Settings) -> Iterator[Engine]:
    """A database at schema 0002 holding sessions in its shape, with their feedback rows."""
    engine = make_engine(empty_settings)
    with moved_to(engine, "0002", up=True) as conn:
        conn.execute(insert(SessionRow), list(OLD_ROWS.values()))
        conn.execute(
            insert(FeedbackRow), [{"session_id": sid, **e._asdict()} for sid, e in OLD_FEEDBACK]
        )
    yield engine
    engine.dispose()


def raw_sessions(engine: Engine, *columns: str) -> dict[str, dict[str, Any]]:
    """The `columns` of every sessions row as stored, by id (read past the store)."""
    names = ", ".join(("id", *columns))
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {names} FROM sessions")).mappings()  # noqa: S608
        found = {row["id"]: dict(row) for row in rows}
    for row in found.values():
        for key in ("state", "fired"):
            if isinstance(row.get(key), str):  # SQLite keeps JSON as text
                row[key] = json.loads(row[key])
    return found


def test_the_migration_to_0003_keeps_every_sessions_progress(at_0002: Engine) -> None:
    migrate(at_0002)
    with at_0002.connect() as conn:
        assert stored_revisions(conn) == {SCHEMA_HEAD}
        # The schema it leaves is the tables' own, index on (session_id, at) included.
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    store = SessionStore(at_0002, "local")
    raw = raw_sessions(at_0002, "state", "active", "started", "fired", "progress_seq")
    for sid, old in (("a-running", RUNNING), ("b-ended", ENDED), ("c-fresh", FRESH)):
        # The store's callers see the state as it was, but for the feedback heard (now the
        # record's alone), and the row's seq.
        assert store.plan_and_state(sid) == (OLD_ROWS[sid]["plan"], as_stored(old))
        assert store.plan_and_state(sid)[1]["seq"] == OLD_ROWS[sid]["progress_seq"]
        # The document lost the progress and the feedback, which the columns and rows hold.
        assert raw[sid]["state"] == document(old)
        assert not {"active", "anchor", "started", "fired", "seq", "feedback"} & set(
            raw[sid]["state"]
        )
        assert (raw[sid]["active"], bool(raw[sid]["started"]), raw[sid]["fired"]) == (
            old["active"],
            old["started"],
            old["fired"],
        )
    # The feedback heard is still in each session's record.
    assert store.get("a-running").feedback == (SOFTER, TENDER)
    assert store.get("b-ended").feedback == (GOOD,)
    assert store.get("c-fresh").feedback == ()
    # The rest of each row is as it was.
    ended = store.get("b-ended")
    assert (ended.status, ended.seconds_done, ended.tension_after) == ("finished", 1790, 2)


def test_repeats_dropped_by_0003_stay_dropped_and_0004_keeps_every_event(at_0002: Engine) -> None:
    """Schema 0003 took an event's content for its identity: a restored backup's repeat was
    dropped (the first stays, in its place in the order heard). From 0004 the same words at the
    same moment twice are two events (tapped twice while paused), both kept."""
    with at_0002.begin() as conn:
        repeat = [{"session_id": "a-running", **e._asdict()} for e in (SOFTER, TENDER, SOFTER)]
        conn.execute(insert(FeedbackRow), repeat)
        before = conn.execute(text("SELECT count(*) FROM feedback_events")).scalar_one()
    assert before == len(OLD_FEEDBACK) + 3
    migrate(at_0002)
    store = SessionStore(at_0002, "local")
    assert store.get("a-running").feedback == (SOFTER, TENDER)
    assert store.get("b-ended").feedback == (GOOD,)
    with at_0002.begin() as conn:
        conn.execute(insert(FeedbackRow), [{"session_id": "b-ended", **GOOD._asdict()}])
    assert store.get("b-ended").feedback == (GOOD, GOOD)


def test_the_downgrade_from_0004_drops_repeats_and_makes_the_index_unique_again(
    at_0002: Engine,
) -> None:
    migrate(at_0002)
    with at_0002.begin() as conn:
        conn.execute(insert(FeedbackRow), [{"session_id": "b-ended", **GOOD._asdict()}])
    with moved_to(at_0002, "0003") as conn:
        indexes = {i["name"]: i for i in inspect(conn).get_indexes("feedback_events")}
    unique = indexes["uq_feedback_events_session_id_at_kind_step_region"]
    assert unique["unique"] and "ix_feedback_events_session_id_at" not in indexes
    store = SessionStore(at_0002, "local")
    assert store.get("b-ended").feedback == (GOOD,)
    assert store.get("a-running").feedback == (SOFTER, TENDER)
    with pytest.raises(IntegrityError), at_0002.begin() as conn:
        conn.execute(insert(FeedbackRow), [{"session_id": "b-ended", **GOOD._asdict()}])


def test_a_damaged_state_migrates_with_its_progress_taken_from_the_row(at_0002: Engine) -> None:
    migrate(at_0002)
    store = SessionStore(at_0002, "local")
    raw = raw_sessions(at_0002, "state", "active", "started", "fired")
    no_active = OLD_ROWS["d-no-active"]["state"]
    # Progress from `seconds_done`: the active time, started when there is some, no cues.
    assert store.plan_and_state("d-no-active")[1] == {
        **document(no_active),
        "active": 42.0,
        "anchor": None,
        "started": True,
        "fired": [],
        "seq": 4,
    }
    assert store.plan_and_state("e-bad-fired")[1] == as_stored(state_at(3, active=30.0, fired=[]))
    # A state that is not a document at all is kept as it was, for the session to say so.
    assert raw["f-a-list"]["state"] == ["not", "a", "state"]
    assert (raw["f-a-list"]["active"], bool(raw["f-a-list"]["started"])) == (0.0, False)
    assert raw["f-a-list"]["fired"] == []
    # The damaged sessions go on: the next save is whole again.
    assert store.save_progress("d-no-active", seq=5, seconds_done=50, state=state_at(5))
    assert store.plan_and_state("d-no-active")[1] == state_at(5)


def test_a_session_whose_state_is_not_a_document_is_read_without_a_type_error(
    at_0002: Engine,
) -> None:
    migrate(at_0002)
    store = SessionStore(at_0002, "local")
    # What a caller can handle: the state as it is (the engine then says it is damaged), or a
    # sentence — never a TypeError that fails a whole batch of events or a whole export.
    try:
        store.plan_and_state("f-a-list")
    except BackrubError:
        pass
    store.export()


def test_the_migration_down_to_0002_puts_the_progress_and_feedback_back(
    at_0002: Engine,
) -> None:
    migrate(at_0002)
    store = SessionStore(at_0002, "local")
    # Saved under 0003: progress only, then feedback (kept as a row, not in the state).
    moved = state_at(8, active=120.0, fired=[*RUNNING["fired"], "check:1"], tender=["lower-back"])
    store.advance(
        "a-running",
        seq=8,
        change=lambda saved: Change(120, moved, changed=("active", "fired", "seq")),
        full=False,
    )
    firmer = FeedbackEvent("firmer", 130.0, 1, "lower-back")
    store.add_feedback(
        "c-fresh",
        event=firmer,
        seq=1,
        seconds_done=130,
        state=state_at(1, active=130.0),
        tender=[],
    )
    saved = snapshot(at_0002)
    with moved_to(at_0002, "0002") as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("sessions")}
        indexes = {
            i["name"]: i["column_names"] for i in inspect(conn).get_indexes("feedback_events")
        }
    assert not {"active", "started", "fired"} & columns
    assert indexes == {"ix_feedback_events_session_id": ["session_id"]}
    raw = raw_sessions(at_0002, "state")
    # Each state whole again, as 0002 kept it: the feedback heard listed from the rows.
    assert raw["a-running"]["state"] == whole(moved, SOFTER, TENDER)
    assert raw["b-ended"]["state"] == ENDED
    assert raw["c-fresh"]["state"] == whole(state_at(1, active=130.0), firmer)
    assert raw["d-no-active"]["state"] == OLD_ROWS["d-no-active"]["state"] | {
        "active": 42.0,
        "anchor": None,
        "started": True,
        "fired": [],
        "seq": 4,
        "feedback": [],
    }
    assert raw["f-a-list"]["state"] == ["not", "a", "state"]
    # And up again: each row as it was before it went down.
    migrate(at_0002)
    assert snapshot(at_0002) == saved


def test_sessions_leave_room_for_their_next_versions_on_postgresql(store: SessionStore) -> None:
    """Each save writes a new version of a session's row: on PostgreSQL, half of each page is
    left for it, so the version goes beside the old one without touching the indexes (the gain
    is measured in bench/RESULTS.md); a downgrade gives the table its defaults back."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no fill factor")

    def options() -> list[str] | None:
        with store.engine.connect() as conn:
            found: list[str] | None = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = 'sessions'::regclass")
            ).scalar_one()
        return found

    assert options() == ["fillfactor=50"]
    with moved_to(store.engine, "0002"):
        pass
    assert options() is None
    migrate(store.engine)
    assert options() == ["fillfactor=50"]
