"""Whole-database backups: a round trip between every pair of backends keeps every row equal, and
a damaged or hostile file is one sentence that leaves the target database as it was."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, func, inspect, select
from store_states import as_stored, document, engine_state, one_sentence, state_at, whole

from backrub.config import Settings
from backrub.core.models import FeedbackEvent, Focus
from backrub.store import SessionStore, make_engine
from backrub.store import backup as backup_module
from backrub.store.accounts import AccountStore
from backrub.store.backup import (
    BackupError,
    check_backup,
    read_backup,
    restore_backup,
    write_backup,
)
from backrub.store.backup_rows import LEFT_OUT, TABLES
from backrub.store.errors import StoreError
from backrub.store.migration import SCHEMA_HEAD, migrate
from backrub.store.remote import RemoteStore
from backrub.store.tables import Base
from pg_databases import empty_postgres, temporary_database

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

START = datetime(2025, 3, 1, 19, 30, tzinfo=UTC)
NOW = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)


def session_values(**overrides: Any) -> dict[str, Any]:
    """What `SessionStore.create` takes, every field set."""
    values: dict[str, Any] = {
        "started_at": START,
        "mode": "partner",
        "minutes_planned": 30,
        "focus": (Focus("upper-back", 8), Focus("lower-back", 5)),
        "verdict": "caution",
        "verdict_conditions": ("sunburn",),
        "tension_before": 7,
        "plan": {"minutes": 30, "steps": [{"index": 0, "pressure": 2, "seconds": 120.5}]},
        "state": engine_state(),
    }
    return values | overrides


HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"


@pytest.fixture(scope="module")
def second_postgres() -> Iterator[str]:
    """A second PostgreSQL database, so one can be restored into the other."""
    with temporary_database("backrub_test") as url:
        yield url


@pytest.fixture
def make_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str, str], Engine]]:
    """An empty database of a backend: make_db("sqlite" | "postgresql", name)."""
    engines: list[Engine] = []
    postgres = iter(("postgres_url", "second_postgres"))

    def make(backend: str, name: str) -> Engine:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/{name}.db"
        else:
            url = empty_postgres(request.getfixturevalue(next(postgres)))
        engine = make_engine(Settings(data_dir=tmp_path, cache_dir=tmp_path, database_url=url))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def fill(engine: Engine) -> None:
    """Rows in every table, written through the store as backrub writes them."""
    migrate(engine)
    accounts = AccountStore(engine)
    ann = accounts.create_user(email="ann@example.org", password_hash=HASH, now=START)
    bob = accounts.create_user(email="bob@example.org", password_hash=HASH + "b", now=NOW)
    accounts.open_login(
        user_id=ann.id, token_hash="a1" * 32, now=START, expires_at=START + timedelta(days=30)
    )
    accounts.record_failure(("account:x",), now=NOW, forget_before=START)
    remotes = RemoteStore(engine)
    for owner in ("local", ann.id, bob.id):
        sessions = SessionStore(engine, owner)
        done = sessions.create(**session_values())
        sessions.add_feedback(
            done,
            event=FeedbackEvent("tender", 12.375, 1, "upper-back"),
            seq=1,
            seconds_done=13,
            state=state_at(1, active=13.25, fired=["check:0"], tender=["upper-back"]),
            tender=("upper-back",),
        )
        sessions.add_feedback(
            done,
            event=FeedbackEvent("softer", 40.0, 2, "lower-back"),
            seq=2,
            seconds_done=40,
            state=state_at(
                2, active=40.0, fired=["check:0", "check:1"], tender=["upper-back"], ceiling=2
            ),
            tender=("upper-back",),
        )
        sessions.finish(
            done,
            status="finished",
            seconds_done=1800,
            tension_after=3,
            note='Schultern — viel besser ✓ "quoted" <b>',
            ended_at=START + timedelta(minutes=31),
        )
        live = sessions.create(
            **session_values(started_at=NOW, tension_before=None, focus=(Focus("shoulders", 9),))
        )
        code = remotes.open(owner=owner, session_id=live, now=NOW).code
        remotes.post(code, "good", client="client-1", now=NOW)


def rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            out[table.name] = [dict(row) for row in conn.execute(query).mappings()]
    return out


def assert_same_rows(before: Engine, after: Engine) -> None:
    expected, got = rows(before), rows(after)
    for name in TABLES:
        assert expected[name], f"the test wrote no {name} rows"
        assert len(got[name]) == len(expected[name]), name
        for want, have in zip(expected[name], got[name], strict=True):
            assert have == want, name
    for name in LEFT_OUT:
        assert expected[name], f"the test wrote no {name} rows"
        assert got[name] == [], name


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("sessions"):
            return {}
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


PAIRS = [
    ("sqlite", "sqlite"),
    ("sqlite", "postgresql"),
    ("postgresql", "sqlite"),
    ("postgresql", "postgresql"),
]


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_round_trip_keeps_every_row(
    make_db: Callable[[str, str], Engine], tmp_path: Path, source: str, target: str
) -> None:
    original = make_db(source, "source")
    fill(original)
    path = tmp_path / "backup.jsonl.gz"
    written = write_backup(original, path, now=NOW)
    assert written == {
        "users": 2, "sessions": 6, "logins": 1, "feedback_events": 6, "remotes": 3
    }  # fmt: skip
    assert path.stat().st_mode & 0o777 == 0o600

    restored = make_db(target, "target")
    assert restore_backup(restored, path) == written
    assert_same_rows(original, restored)

    # The restored database goes on working: new rows get new ids, old logins still sign in.
    store = SessionStore(restored, "local")
    (live,) = [s.id for s in store.sessions() if s.status == "active"]
    store.add_feedback(
        live,
        event=FeedbackEvent("firmer", 5.0, 0, "shoulders"),
        seq=5,
        seconds_done=5,
        state=state_at(5),
        tender=(),
    )
    assert AccountStore(restored).user_for_login("a1" * 32, now=NOW) is not None


def test_sqlite_to_postgresql_and_back_gives_the_same_file(
    make_db: Callable[[str, str], Engine], tmp_path: Path
) -> None:
    first = make_db("sqlite", "first")
    fill(first)
    write_backup(first, tmp_path / "one.gz", now=NOW)
    middle = make_db("postgresql", "middle")
    restore_backup(middle, tmp_path / "one.gz")
    write_backup(middle, tmp_path / "two.gz", now=NOW)
    last = make_db("sqlite", "last")
    restore_backup(last, tmp_path / "two.gz")
    assert_same_rows(first, last)
    one, two = (gzip.decompress((tmp_path / n).read_bytes()) for n in ("one.gz", "two.gz"))
    assert one == two


def lines_of(path: Path) -> list[Any]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def write_lines(path: Path, lines: list[Any]) -> None:
    path.write_bytes(gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines)))


@pytest.fixture
def good_backup(make_db: Callable[[str, str], Engine], tmp_path: Path) -> Path:
    source = make_db("sqlite", "good-source")
    fill(source)
    path = tmp_path / "good.gz"
    write_backup(source, path, now=NOW)
    return path


def damage_row(table: str, **change: Any) -> Callable[[list[Any]], None]:
    def damage(lines: list[Any]) -> None:
        row = next(x["row"] for x in lines if x.get("table") == table)
        row.update(change)

    return damage


def refused(target: Engine, tmp_path: Path, lines: list[Any]) -> str:
    """Restore `lines` into `target`: it must be refused with a `BackupError`, leaving the
    database exactly as it was (not even the tables created); returns the sentence."""
    bad = tmp_path / "bad.gz"
    write_lines(bad, lines)
    before = counts(target)
    with pytest.raises(BackupError) as raised:
        restore_backup(target, bad)
    assert counts(target) == before
    return raised.value.message


def drop(index: int) -> Callable[[list[Any]], None]:
    return lambda lines: lines.pop(index)


def repeat_feedback(lines: list[Any]) -> None:
    """The first feedback event again, under another id (and counted)."""
    at = next(n for n, x in enumerate(lines) if x.get("table") == "feedback_events")
    ids = [x["row"]["id"] for x in lines if x.get("table") == "feedback_events"]
    again = {**lines[at]["row"], "id": max(ids) + 1}
    lines.insert(at + 1, {"table": "feedback_events", "row": again})
    lines[-1]["end"]["feedback_events"] += 1


DAMAGES = {
    "cut-short": (drop(-1), "ends early"),
    "newer-schema": (lambda ls: ls[0].update(schema="0005"), "upgrade backrub"),
    "older-schema": (lambda ls: ls[0].update(schema="0001"), "use the backrub that wrote it"),
    "newer-format": (lambda ls: ls[0].update(version=2), "newer backrub"),
    "not-a-backup": (lambda ls: ls.__setitem__(0, {"sessions": []}), "not a backrub backup"),
    "finished-without-end": (
        damage_row("sessions", status="stopped", ended_at=None),
        "must have an end time",
    ),
    "bad-mode": (damage_row("sessions", mode="upside-down"), "The mode must be"),
    "minutes-zero": (damage_row("sessions", minutes_planned=0), "minutes planned"),
    "huge-number": (damage_row("sessions", seconds_done=2**40), "seconds done"),
    "negative-active": (damage_row("sessions", active=-1.5), "active time"),
    "huge-active": (damage_row("sessions", active=1e300), "active time"),
    "started-as-text": (damage_row("sessions", started="yes"), "true or false"),
    "fired-not-a-list": (damage_row("sessions", fired="check:0"), "cues given"),
    "fired-empty-id": (damage_row("sessions", fired=[""]), "cues given"),
    "no-progress": (
        lambda ls: next(x["row"] for x in ls if x.get("table") == "sessions").pop("active"),
        "exactly the fields",
    ),
    "naive-date": (damage_row("users", created_at="2025-03-01T19:30:00"), "time zone"),
    "overflowing-date": (damage_row("users", created_at="0001-01-01T00:00+05:00"), "time zone"),
    "feedback-kind": (damage_row("feedback_events", kind="harder"), "feedback kind"),
    "orphan": (damage_row("feedback_events", session_id="f" * 32), "not in the backup"),
    "extra-field": (damage_row("remotes", admin=True), "exactly the fields"),
    "nul": (damage_row("sessions", note="a\x00b"), "not plain Unicode"),
    "surrogate": (damage_row("sessions", plan={"x": "\ud800"}), "not plain Unicode"),
    "long-email": (damage_row("users", email="a@" + "b" * 300), "at most 254"),
    "upper-email": (damage_row("users", email="Ann@example.org"), "lower-case"),
    "duplicate-email": (
        lambda ls: ls[2]["row"].update(email=ls[1]["row"]["email"]),
        "second user",
    ),
    "duplicate-key": (lambda ls: ls.insert(2, ls[1]), "second users row"),
    "order": (lambda ls: ls.insert(1, ls.pop(3)), "must come before"),
    "counts": (lambda ls: ls[-1]["end"].update(users=3), "closing row counts"),
    "after-end": (lambda ls: ls.append(ls[1]), "more follows"),
    "unknown-table": (lambda ls: ls.insert(1, {"table": "pg_authid", "row": {}}), "no table"),
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_one_sentence_and_changes_nothing(
    make_db: Callable[[str, str], Engine],
    good_backup: Path,
    tmp_path: Path,
    backend: str,
    damage: str,
) -> None:
    change, words = DAMAGES[damage]
    lines = lines_of(good_backup)
    change(lines)
    message = refused(make_db(backend, "target"), tmp_path, lines)
    assert words in message
    assert "\n" not in message and message.endswith(".")
    assert "nothing was restored" in message.lower()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a backrub backup"),
        (b"\x1f\x8b\x08\x00garbage", "damaged or cut short"),
        (b'{"format": "backrub-backup", "version": 1, "schema": "0002"', "not a backrub backup"),
        (b"[" * 100_000, "not a backrub backup"),
        (b'{"format": NaN}', "not a backrub backup"),
        (b'{"format": "backrub-backup", "format": "x"}', "not a backrub backup"),
        (("{" + '"a":' * 10 + "1" + "}" * 10).encode(), "not a backrub backup"),
        (b"\xff\xfe", "not a backrub backup"),
    ],
)
def test_hostile_bytes_are_one_sentence(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "hostile"
    path.write_bytes(data)
    with pytest.raises(BackupError, match=words), path.open("rb") as stream:
        check_backup(stream)


def test_deep_and_long_rows_are_refused(
    good_backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = lines_of(good_backup)
    row = next(x["row"] for x in lines if x.get("table") == "sessions")
    deep: Any = 1
    for _ in range(500):
        deep = [deep]
    row["plan"] = {"steps": deep}
    write_lines(tmp_path / "deep.gz", lines)
    with (
        pytest.raises(BackupError, match="nested too deeply"),
        (tmp_path / "deep.gz").open("rb") as f,
    ):
        check_backup(f)

    monkeypatch.setattr(backup_module, "MAX_LINE", 100)
    with pytest.raises(BackupError, match="longer than 100 bytes"), good_backup.open("rb") as f:
        check_backup(f)


@pytest.mark.parametrize("schema", ["0003", "0004"])
def test_the_same_words_at_the_same_moment_twice_restore_as_two_events(
    make_db: Callable[[str, str], Engine], good_backup: Path, tmp_path: Path, schema: str
) -> None:
    """Two taps of the same word while paused are two events (each re-planned the session): a
    backup keeps both, and so does its restore — from this schema, or from 0003, whose rows are
    the same."""
    lines = lines_of(good_backup)
    repeat_feedback(lines)
    lines[0]["schema"] = schema
    path = tmp_path / "twice.gz"
    write_lines(path, lines)
    target = make_db("sqlite", "twice")
    assert restore_backup(target, path)["feedback_events"] == counts(target)["feedback_events"]
    heard = [
        (r["session_id"], r["kind"], r["at"], r["step"]) for r in rows(target)["feedback_events"]
    ]
    assert len(heard) == len(set(heard)) + 1


def test_an_uncompressed_backup_restores_too(
    make_db: Callable[[str, str], Engine], good_backup: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(gzip.decompress(good_backup.read_bytes()))
    assert restore_backup(make_db("sqlite", "t"), plain)["sessions"] == 6


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_with_data_is_refused_unless_replace(
    make_db: Callable[[str, str], Engine], good_backup: Path, backend: str
) -> None:
    target = make_db(backend, "target")
    migrate(target)
    SessionStore(target, "someone").create(**session_values())
    with pytest.raises(StoreError, match="already holds sessions"):
        restore_backup(target, good_backup)
    assert counts(target)["sessions"] == 1

    restore_backup(target, good_backup, replace=True)
    owners = {s["owner"] for s in rows(target)["sessions"]}
    assert "someone" not in owners and len(rows(target)["sessions"]) == 6


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_failure_halfway_through_the_insert_restores_nothing(
    make_db: Callable[[str, str], Engine],
    good_backup: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    """All or nothing even past validation: a row that fails while inserting (here: the
    check pass is skipped) rolls back the deletes of --replace and every row inserted."""
    lines = lines_of(good_backup)
    lines[-2]["row"]["expires_at"] = "yesterday"  # the last row
    bad = tmp_path / "bad.gz"
    write_lines(bad, lines)
    target = make_db(backend, "target")
    fill(target)
    before = rows(target)
    monkeypatch.setattr(backup_module, "check_backup", lambda stream: {})
    with pytest.raises(BackupError, match="remote's expiry"):
        restore_backup(target, bad, replace=True)
    assert rows(target) == before


def test_an_unreadable_file_is_one_sentence(
    make_db: Callable[[str, str], Engine], tmp_path: Path
) -> None:
    with pytest.raises(BackupError, match=r"Cannot read .*missing\.gz \(No such file"):
        restore_backup(make_db("sqlite", "t"), tmp_path / "missing.gz")


def test_an_unwritable_path_leaves_no_file(
    make_db: Callable[[str, str], Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_db("sqlite", "source")
    fill(source)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"Cannot write the backup to .*nothing was written"):
        write_backup(source, blocker / "backup.gz", now=NOW)

    # A failure while writing (a full disk) leaves neither the file nor a temporary one.
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_module, "_dump", full)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(StoreError, match="No space left on device"):
        write_backup(source, folder / "backup.gz", now=NOW)
    assert list(folder.iterdir()) == []


def test_a_failing_database_leaves_no_file(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/no-such-folder/x.db")
    with pytest.raises(StoreError, match="cannot be used"):
        write_backup(engine, tmp_path / "backup.gz", now=NOW)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_the_header_names_format_and_schema(good_backup: Path) -> None:
    header, *body, end = lines_of(good_backup)
    assert header == {
        "format": "backrub-backup",
        "version": 1,
        "schema": SCHEMA_HEAD,
        "created_at": NOW.isoformat(),
    }
    assert [x["table"] for x in body] == sorted((x["table"] for x in body), key=TABLES.index)
    assert set(end) == {"end"}
    # What the file must not hold: the ephemeral tables.
    assert not {x["table"] for x in body} & set(LEFT_OUT)


def test_every_table_and_column_is_kept_or_left_out_on_purpose(good_backup: Path) -> None:
    """A table or column added later must be added here too: nothing is dropped silently."""
    assert sorted(TABLES + LEFT_OUT) == sorted(Base.metadata.tables)
    with good_backup.open("rb") as stream:
        for table, values in read_backup(stream):
            assert set(values) == set(table.columns.keys()), table.name


# ---- backups of schema 0002: a session's state whole, feedback heard in it -------------------

SOFTER = FeedbackEvent("softer", 40.0, 0, "upper-back")
TENDER = FeedbackEvent("tender", 95.5, 1, "lower-back")
GOOD = FeedbackEvent("good", 1500.25, 1, "lower-back")
OLD_RUNNING = whole(
    state_at(7, active=95.5, fired=["check:0", "half:0"], tender=["lower-back"]),
    SOFTER._asdict(),
    TENDER._asdict(),
)
OLD_ENDED = whole(
    state_at(12, active=1790.0, fired=["check:0", "finish"], ceiling=2, stopped=True),
    GOOD._asdict(),
)
# Damaged (a hand-edited file): its progress is taken from the row, as the migration does.
OLD_NO_ACTIVE = {k: v for k, v in whole(state_at(4, fired=["check:0"])).items() if k != "active"}
ANN = "a" * 32


def row_0002(session_id: str, owner: str, state: object, **columns: Any) -> dict[str, Any]:
    """A sessions row as a backup of schema 0002 holds it: no progress columns."""
    return {
        "id": session_id,
        "owner": owner,
        "started_at": START.isoformat(),
        "ended_at": None,
        "status": "active",
        "mode": "partner",
        "minutes_planned": 30,
        "seconds_done": 0,
        "progress_seq": 0,
        "focus": [{"region": "upper-back", "tension": 8}],
        "verdict": "caution",
        "verdict_conditions": ["sunburn"],
        "tension_before": 7,
        "tension_after": None,
        "note": None,
        "tender": [],
        "plan": {"minutes": 30, "steps": [{"index": 0, "pressure": 2, "seconds": 120.5}]},
        "state": state,
        "updated_at": NOW.isoformat(),
        **columns,
    }


def backup_0002() -> list[Any]:
    """The lines of a backup that a backrub of schema 0002 wrote."""
    sessions = [
        row_0002("r" * 32, "local", OLD_RUNNING, seconds_done=95, progress_seq=7),
        row_0002(
            "e" * 32,
            ANN,
            OLD_ENDED,
            status="finished",
            ended_at=(START + timedelta(minutes=31)).isoformat(),
            seconds_done=1790,
            progress_seq=12,
            tension_after=2,
            note="Much better.",
        ),
        row_0002("d" * 32, "local", OLD_NO_ACTIVE, seconds_done=42, progress_seq=4),
    ]
    heard = [("r" * 32, SOFTER), ("r" * 32, TENDER), ("e" * 32, GOOD)]
    user = {
        "id": ANN,
        "email": "ann@example.org",
        "password_hash": HASH,
        "created_at": START.isoformat(),
        "consent_at": START.isoformat(),
    }
    return [
        {"format": "backrub-backup", "version": 1, "schema": "0002", "created_at": NOW.isoformat()},
        {"table": "users", "row": user},
        *({"table": "sessions", "row": row} for row in sessions),
        *(
            {"table": "feedback_events", "row": {"id": n, "session_id": sid, **event._asdict()}}
            for n, (sid, event) in enumerate(heard, 1)
        ),
        {
            "end": {
                "users": 1,
                "sessions": 3,
                "logins": 0,
                "feedback_events": 3,
                "remotes": 0,
            }
        },
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_backup_of_schema_0002_restores_with_each_sessions_progress(
    make_db: Callable[[str, str], Engine], tmp_path: Path, backend: str
) -> None:
    path = tmp_path / "0002.gz"
    write_lines(path, backup_0002())
    target = make_db(backend, "target")
    assert restore_backup(target, path) == {
        "users": 1, "sessions": 3, "logins": 0, "feedback_events": 3, "remotes": 0
    }  # fmt: skip
    local, ann = SessionStore(target, "local"), SessionStore(target, ANN)
    plan = backup_0002()[2]["row"]["plan"]
    # The store's callers see each state as it was, but for the feedback heard: the record's.
    assert local.plan_and_state("r" * 32) == (plan, as_stored(OLD_RUNNING))
    assert ann.plan_and_state("e" * 32) == (plan, as_stored(OLD_ENDED))
    assert local.get("r" * 32).feedback == (
        SOFTER,
        TENDER,
    )
    assert ann.get("e" * 32).feedback == (GOOD,)
    assert local.plan_and_state("d" * 32)[1] == {
        **document(OLD_NO_ACTIVE),
        "active": 42.0,
        "anchor": None,
        "started": True,
        "fired": [],
        "seq": 4,
    }
    # Kept in this schema's shape: the document without progress or feedback, the columns.
    restored = {row["id"]: row for row in rows(target)["sessions"]}
    for sid, old in (("r" * 32, OLD_RUNNING), ("e" * 32, OLD_ENDED)):
        assert restored[sid]["state"] == document(old)
        assert (restored[sid]["active"], restored[sid]["started"], restored[sid]["fired"]) == (
            old["active"],
            old["started"],
            old["fired"],
        )
    # A backup of it now is of this schema, and restores to the very same rows.
    write_backup(target, tmp_path / "now.gz", now=NOW)
    assert lines_of(tmp_path / "now.gz")[0]["schema"] == SCHEMA_HEAD == "0004"
    again = make_db("sqlite", "again")
    restore_backup(again, tmp_path / "now.gz")
    assert {t: rows(again)[t] for t in TABLES} == {t: rows(target)[t] for t in TABLES}


def session_line(lines: list[Any]) -> int:
    """The line number (from 1) of the first sessions row."""
    return next(n for n, x in enumerate(lines, 1) if x.get("table") == "sessions")


def damage_0002(**change: Any) -> Callable[[list[Any]], None]:
    return damage_row("sessions", **change)


def drop_0002_field(name: str) -> Callable[[list[Any]], None]:
    return lambda lines: next(x["row"] for x in lines if x.get("table") == "sessions").pop(name)


# What a refused row of schema 0002 is told to have: that schema's fields, none of 0003's own.
OLD_FIELDS = "a sessions row of schema 0002 must have exactly the fields id, owner, started_at, "
DAMAGES_0002 = {
    "bad-status": (damage_0002(status="paused"), "The status must be"),
    "bad-tension": (damage_0002(tension_before=11), "Tension before must be"),
    "state-not-a-document": (damage_0002(state=["a", "list"]), "must be a dictionary"),
    "state-not-plain": (damage_0002(state={**OLD_RUNNING, "x": "\ud800"}), "not plain Unicode"),
    "missing-field": (drop_0002_field("tender"), OLD_FIELDS),
    "extra-field": (damage_0002(admin=True), OLD_FIELDS),
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("damage", list(DAMAGES_0002))
def test_a_damaged_0002_session_is_one_sentence_naming_its_line(
    make_db: Callable[[str, str], Engine], tmp_path: Path, backend: str, damage: str
) -> None:
    change, words = DAMAGES_0002[damage]
    lines = backup_0002()
    change(lines)
    message = refused(make_db(backend, "target"), tmp_path, lines)
    assert message.startswith(
        f"The backup cannot be restored: line {session_line(lines)} is wrong ("
    )
    assert words in message
    if words == OLD_FIELDS:
        assert "tender" in message and "active" not in message and "fired" not in message
    assert one_sentence(message), message
    assert message.endswith("; nothing was restored.")


@pytest.mark.parametrize(
    ("schema", "words"), [("0001", "use the backrub that wrote it"), ("0005", "upgrade backrub")]
)
def test_a_backup_of_another_schema_names_the_three_this_backrub_restores(
    make_db: Callable[[str, str], Engine], tmp_path: Path, schema: str, words: str
) -> None:
    lines = backup_0002()
    lines[0]["schema"] = schema
    path = tmp_path / "other.gz"
    write_lines(path, lines)
    target = make_db("sqlite", "target")
    with pytest.raises(BackupError) as raised:
        restore_backup(target, path)
    message = raised.value.message
    assert f"database schema {schema!r}" in message
    assert "'0002', '0003' and '0004'" in message
    assert words in message
    assert one_sentence(message), message
    assert counts(target) == {}
