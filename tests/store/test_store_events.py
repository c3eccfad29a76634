"""The player's events saved one to a transaction (`SessionStore.advance`), on SQLite and
PostgreSQL: the seq rule, the owner, the event's own change, and what is saved is what the store
reads back."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from store_states import as_stored, document, engine_state, state_at, step

from backrub.core.errors import BackrubError, BadInput
from backrub.core.models import FeedbackEvent
from backrub.store import NoSuchSession, SessionStore, StoreError
from backrub.store.events import Advanced, Change

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from backrub.core.models import FeedbackKind

    Make = Callable[..., str]
    Counts = Callable[..., tuple[int, int]]
    ChangeFn = Callable[[dict[str, Any]], Change]


def logged(
    label: str,
    seconds: int,
    *,
    seen: list[dict[str, Any]] | None = None,
    feedback: FeedbackEvent | None = None,
    tender: Sequence[str] | None = None,
) -> ChangeFn:
    """A change that adds `label` to the state's log (so the order of the changes shows in what
    is saved) and makes the active time `seconds`; `seen` collects the state each call was
    given. (`event` sets the state's `seq`, as the engine does.)"""

    def change(saved: dict[str, Any]) -> Change:
        if seen is not None:
            seen.append(saved)
        state = {
            **saved,
            "log": [*saved.get("log", []), label],
            "active": float(seconds),
            "started": True,
        }
        return Change(seconds_done=seconds, state=state, feedback=feedback, tender=tender)

    return change


def failing(error: BackrubError, calls: list[str] | None = None) -> ChangeFn:
    def change(saved: dict[str, Any]) -> Change:
        if calls is not None:
            calls.append("called")
        raise error

    return change


def send(
    store: SessionStore, session_id: str, seq: int, change: ChangeFn, *, full: bool = False
) -> Advanced | BackrubError:
    """The event `seq` of a session, saved: what it did, or why not."""
    try:
        return store.advance(session_id, seq=seq, change=stamped(seq, change), full=full)
    except BackrubError as exc:
        return exc


def stamped(seq: int, change: ChangeFn) -> ChangeFn:
    """`change`, whose state is given `seq`, as the engine gives it (the store gives it back as
    the row's `progress_seq`)."""

    def with_seq(saved: dict[str, Any]) -> Change:
        made = change(saved)
        return made._replace(state={**made.state, "seq": seq})

    return with_seq


def accepted(result: Advanced | BackrubError) -> Advanced:
    assert isinstance(result, Advanced), result
    assert result.accepted is True
    return result


def refused(result: Advanced | BackrubError) -> Advanced:
    assert isinstance(result, Advanced), result
    assert result.accepted is False
    return result


def feedback(kind: FeedbackKind, at: float, step: int = 1) -> FeedbackEvent:
    return FeedbackEvent(kind, at, step, "upper-back")


def test_every_event_is_saved(store: SessionStore, new_session: Make) -> None:
    ids = [new_session() for _ in range(3)]
    for n, sid in enumerate(ids):
        done = accepted(send(store, sid, 1, logged(f"s{n}", 10 * (n + 1))))
        assert done.state["log"] == [f"s{n}"]
        # Not asked for, and accepted: no record read.
        assert done.record is None
        assert store.get(sid).seconds_done == 10 * (n + 1)
        assert store.plan_and_state(sid)[1] == done.state
        # The seq is saved too: the same seq again is now refused.
        assert store.save_progress(sid, seq=1, seconds_done=999, state=state_at(1)) is False
        assert store.save_progress(sid, seq=2, seconds_done=999, state=state_at(2)) is True


def test_events_apply_in_order_and_a_late_one_changes_nothing(
    store: SessionStore, new_session: Make
) -> None:
    sid = new_session()
    seen: list[dict[str, Any]] = []
    calls: list[str] = []
    accepted(send(store, sid, 1, logged("first", 30, seen=seen)))
    second = accepted(send(store, sid, 4, logged("second", 60, seen=seen)))
    for late_seq in (4, 2):  # the same seq, then a lower one
        late = refused(send(store, sid, late_seq, failing(BadInput("not called"), calls)))
        # Answered with the saved state in full.
        assert late.state == second.state
        assert late.record is not None and late.record.id == sid
    third = accepted(send(store, sid, 5, logged("third", 90, seen=seen)))
    # Each change saw what the earlier events had made of the session.
    assert [s.get("log") for s in seen] == [None, ["first"], ["first", "second"]]
    assert calls == []
    assert third.state["log"] == ["first", "second", "third"]
    assert store.plan_and_state(sid)[1] == third.state
    assert store.get(sid).seconds_done == 90
    assert store.save_progress(sid, seq=5, seconds_done=0, state=state_at(5)) is False


def test_an_ended_session_refuses_its_events(store: SessionStore, new_session: Make) -> None:
    ended = new_session()
    kept = state_at(3, active=120.0, log=["kept"])
    store.save_progress(ended, seq=3, seconds_done=120, state=kept)
    store.finish(
        ended,
        status="finished",
        seconds_done=125,
        tension_after=2,
        note=None,
        ended_at=datetime(2025, 3, 1, 20, 0, tzinfo=UTC),
    )
    before = store.get(ended)
    calls: list[str] = []
    late = refused(send(store, ended, 9, failing(BadInput("not called"), calls)))
    assert calls == []
    assert late.state == as_stored(kept)
    assert late.record == before and late.record.status == "finished"
    assert store.get(ended) == before


def test_another_owners_session_is_no_such_session(
    store: SessionStore, other: SessionStore, new_session: Make
) -> None:
    theirs = new_session(into=other)
    before = (other.get(theirs), other.plan_and_state(theirs))
    calls: list[str] = []
    unknown = "0123456789abcdef0123456789abcdef"
    for sid in (theirs, unknown):
        missing = send(store, sid, 1, failing(BadInput("not called"), calls))
        assert isinstance(missing, NoSuchSession)
        assert missing.session_id == sid
    assert calls == []
    assert (other.get(theirs), other.plan_and_state(theirs)) == before
    # Their owner still saves to it, from seq 1.
    assert accepted(send(other, theirs, 1, logged("theirs", 7))).state["log"] == ["theirs"]


def test_a_change_that_fails_leaves_its_session_as_it_was(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    broken, damaged = new_session(), new_session()
    accepted(send(store, broken, 1, logged("kept", 15)))
    bad = BadInput("That step does not exist.")

    def not_plain(saved: dict[str, Any]) -> Change:
        return Change(seconds_done=40, state={**saved, "when": datetime.now(UTC)})

    def unknown_feedback(saved: dict[str, Any]) -> Change:
        wrong = FeedbackEvent("tickle", 3.0, 0, "upper-back")  # type: ignore[arg-type]
        return Change(40, {**saved, "log": ["heard"]}, feedback=wrong, tender=["upper-back"])

    assert send(store, broken, 2, failing(bad)) is bad
    failed = send(store, damaged, 1, not_plain)
    assert isinstance(failed, StoreError) and "plain JSON data" in failed.message
    failed = send(store, damaged, 2, unknown_feedback)
    assert isinstance(failed, StoreError) and "feedback kind" in failed.message
    assert store.plan_and_state(broken)[1]["log"] == ["kept"]
    assert store.get(broken).seconds_done == 15
    untouched = store.get(damaged)
    assert (untouched.seconds_done, untouched.tender, untouched.feedback) == (0, (), ())
    assert "log" not in store.plan_and_state(damaged)[1]
    assert counts() == (2, 0)
    # A failed event moved no seq forward: the same seqs are taken next time.
    assert accepted(send(store, broken, 2, logged("now", 20))).state["log"] == ["kept", "now"]
    assert accepted(send(store, damaged, 1, logged("now", 1))).state["log"] == ["now"]


def test_every_feedback_heard_is_kept_the_same_words_twice_too(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    """Each accepted event's feedback is a row of its own: the same words at the same moment
    twice (tapped twice while paused) are two events, each of which re-planned the session. A
    refused event's feedback is not kept: it changed nothing."""
    sid, elsewhere = new_session(), new_session()
    softer, tender = feedback("softer", 30.5), feedback("tender", 42.0, step=2)
    accepted(send(store, sid, 1, logged("a", 30, feedback=softer, tender=[])))
    accepted(send(store, sid, 2, logged("b", 31, feedback=softer, tender=[])))  # tapped again
    accepted(send(store, sid, 3, logged("c", 42, feedback=tender, tender=["upper-back"])))
    # The same words about another session are that session's own.
    accepted(send(store, elsewhere, 1, logged("d", 30, feedback=softer)))
    record = store.get(sid)
    assert record.feedback == (softer, softer, tender)
    assert record.tender == ("upper-back",)
    assert store.get(elsewhere).feedback == (softer,)
    assert store.get(elsewhere).tender == ()  # no tender given: left as it was
    assert counts() == (2, 4)
    full = accepted(send(store, sid, 4, logged("e", 50, feedback=tender), full=True))
    assert full.record == store.get(sid)
    refused(send(store, sid, 4, logged("f", 50, feedback=feedback("good", 60.0))))
    assert store.get(sid).feedback == (softer, softer, tender, tender)
    assert counts() == (2, 5)


def test_feedback_at_one_moment_keeps_the_order_it_was_heard_in(
    store: SessionStore, new_session: Make
) -> None:
    """Words said at the same moment (tapped one after another while paused) come back in the
    order they were heard, not in any order of their own."""
    sid = new_session()
    said = [feedback(kind, 30.0) for kind in ("softer", "firmer", "tender", "good", "softer")]
    for n, f in enumerate(said, 1):
        accepted(send(store, sid, n, logged(f"s{n}", 30, feedback=f)))
    assert store.get(sid).feedback == tuple(said)


def test_a_full_answer_reads_the_record(store: SessionStore, new_session: Make) -> None:
    sid, plain = new_session(), new_session()
    heard = feedback("firmer", 12.0)
    done = accepted(
        send(store, sid, 1, logged("a", 12, feedback=heard, tender=["neck"]), full=True)
    )
    assert done.record == store.get(sid)
    assert done.record is not None
    assert (done.record.seconds_done, done.record.feedback, done.record.tender) == (
        12, (heard,), ("neck",),
    )  # fmt: skip
    assert accepted(send(store, plain, 1, logged("b", 5))).record is None


def test_two_writers_on_the_same_sessions_in_opposite_orders_lose_nothing(
    store: SessionStore, new_session: Make
) -> None:
    """Two threads save events to the same sessions at once: no deadlock, and each session
    ends at the highest seq either sent, with every accepted event in its log."""
    ids = [new_session() for _ in range(3)]
    rounds = 15
    failures: list[BaseException] = []
    accepted_seqs: dict[str, list[int]] = {sid: [] for sid in ids}
    lock = threading.Lock()

    def write(first: int, order: list[str]) -> None:
        try:
            for n in range(rounds):
                seq = 2 * n + first
                for sid in order:
                    result = send(store, sid, seq, logged(str(seq), seq))
                    assert isinstance(result, Advanced), result
                    if result.accepted:
                        with lock:
                            accepted_seqs[sid].append(seq)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [
        threading.Thread(target=write, args=(1, ids)),
        threading.Thread(target=write, args=(2, ids[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert failures == []
    for sid in ids:
        assert max(accepted_seqs[sid]) == 2 * rounds
        # Every accepted event is in the saved log, in seq order; no refused one is.
        log = store.plan_and_state(sid)[1]["log"]
        assert log == [str(s) for s in sorted(accepted_seqs[sid])]
        assert store.get(sid).seconds_done == 2 * rounds


# ---- a progress save writes the progress alone ----------------------------------------------

# The fields a progress save, pause or resume changes (backrub/service/events.py sends these).
RECORDED = ("active", "anchor", "started", "fired", "seq")


def recorded(active: float, fired: Sequence[str]) -> ChangeFn:
    """A progress save as the player sends it: on the saved state as it is, the active time and
    the cues given move (`event` sets `seq`), and `changed` says that is all."""

    def change(saved: dict[str, Any]) -> Change:
        state = {
            **saved,
            "active": max(saved["active"], active),
            "anchor": None,
            "started": True,
            "fired": sorted({*saved["fired"], *fired}),
        }
        return Change(seconds_done=int(active), state=state, changed=RECORDED)

    return change


def long_session() -> dict[str, Any]:
    """The state of a long session, its cues all different: several KB that PostgreSQL keeps
    out of line (TOAST), even compressed."""
    steps = [{**step(n), "cue": hashlib.sha256(f"cue {n}".encode()).hexdigest()} for n in range(60)]
    return engine_state(steps=steps, durations=[120.0] * 60)


@pytest.fixture
def doc_writes(store: SessionStore) -> Callable[[], list[str]]:
    """The ids of the sessions whose `state` column an UPDATE wrote since the fixture was set up,
    in order: a trigger on `UPDATE OF state` notes them, whatever the value written."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE doc_writes (n INTEGER PRIMARY KEY, session_id TEXT)")
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER note_doc_write AFTER UPDATE OF state ON sessions "
                "BEGIN INSERT INTO doc_writes (session_id) VALUES (NEW.id); END"
            )
        else:
            conn.exec_driver_sql("CREATE SEQUENCE doc_writes_n OWNED BY doc_writes.n")
            conn.exec_driver_sql(
                "ALTER TABLE doc_writes ALTER COLUMN n SET DEFAULT nextval('doc_writes_n')"
            )
            conn.exec_driver_sql(
                "CREATE FUNCTION note_doc_write() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO doc_writes (session_id) VALUES (NEW.id); RETURN NULL; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER note_doc_write AFTER UPDATE OF state ON sessions "
                "FOR EACH ROW EXECUTE FUNCTION note_doc_write()"
            )

    def written() -> list[str]:
        with store.engine.connect() as conn:
            query = "SELECT session_id FROM doc_writes ORDER BY n"
            return list(conn.exec_driver_sql(query).scalars())

    return written


def stored_row(store: SessionStore, session_id: str) -> dict[str, Any]:
    """A session's state as its columns hold it, the document as the text stored (read past
    the store: SQLite keeps JSON as text, PostgreSQL's `json` keeps the text it was given)."""
    with store.engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT CAST(state AS TEXT) AS state, active, started, fired, progress_seq, "
                    "seconds_done FROM sessions WHERE id = :id"
                ),
                {"id": session_id},
            )
            .mappings()
            .one()
        )
    found = dict(row)
    found["started"] = bool(found["started"])
    if isinstance(found["fired"], str):
        found["fired"] = json.loads(found["fired"])
    return found


def toast_values(store: SessionStore) -> set[int]:
    """The values PostgreSQL keeps out of line for the sessions table (each written document
    that is several KB is a new one; a row updated without it keeps pointing at the old)."""
    with store.engine.connect() as conn:
        toast = conn.exec_driver_sql(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'sessions'::regclass"
        ).scalar_one()
        query = f"SELECT DISTINCT chunk_id FROM {toast}"  # noqa: S608 (the server's own name)
        return set(conn.exec_driver_sql(query).scalars())


def test_a_progress_save_leaves_the_saved_document_as_it_was(
    store: SessionStore, new_session: Make, doc_writes: Callable[[], list[str]]
) -> None:
    begun = long_session()
    sid = new_session(state=begun)
    before = stored_row(store, sid)
    assert json.loads(before["state"]) == document(begun)
    postgres = store.engine.dialect.name == "postgresql"
    if postgres:
        kept_apart = toast_values(store)
        assert kept_apart, "the document is not kept out of line: the test would prove nothing"
    accepted(send(store, sid, 1, recorded(15.5, ["step:0"])))
    accepted(send(store, sid, 2, recorded(31.25, ["check:0"])))
    accepted(send(store, sid, 3, recorded(40.0, [])))
    done = accepted(send(store, sid, 4, recorded(45.0, ["half:0"])))
    after = stored_row(store, sid)
    # The document is not written again: the very text it was.
    assert after["state"] == before["state"]
    assert doc_writes() == []
    if postgres:
        assert toast_values(store) <= kept_apart  # no new out-of-line value
    # The progress moved, in its columns.
    fired = ["check:0", "half:0", "step:0"]
    assert (before["active"], before["started"], before["fired"]) == (0.0, False, [])
    assert (after["active"], after["started"], after["fired"]) == (45.0, True, fired)
    assert (after["progress_seq"], after["seconds_done"]) == (4, 45)
    # And the store's callers see the whole state moved.
    moved = {**begun, "active": 45.0, "started": True, "fired": fired, "seq": 4}
    assert done.state == moved
    assert store.plan_and_state(sid)[1] == moved


@pytest.mark.parametrize("named", [True, False])
def test_a_change_to_the_timeline_writes_the_document(
    store: SessionStore, new_session: Make, doc_writes: Callable[[], list[str]], named: bool
) -> None:
    """A change that names a field of the document (`durations`: an extend) writes it, as
    does a change that names nothing (then all of it is checked and written)."""
    begun = long_session()
    sid = new_session(state=begun)
    before = stored_row(store, sid)
    postgres = store.engine.dialect.name == "postgresql"
    kept_apart = toast_values(store) if postgres else set()
    longer = [150.0, *begun["durations"][1:]]

    def extend(saved: dict[str, Any]) -> Change:
        state = {**saved, "active": 50.0, "started": True, "durations": longer}
        return Change(50, state, changed=[*RECORDED, "durations"] if named else None)

    store.advance(sid, seq=1, change=stamped(1, extend), full=False)
    after = stored_row(store, sid)
    assert after["state"] != before["state"]
    assert json.loads(after["state"]) == document({**begun, "durations": longer})
    assert (after["active"], after["started"], after["progress_seq"]) == (50.0, True, 1)
    assert doc_writes() == [sid]
    if postgres:
        assert toast_values(store) - kept_apart  # a new out-of-line value: the new document
    assert store.plan_and_state(sid)[1] == {
        **begun, "active": 50.0, "started": True, "durations": longer, "seq": 1
    }  # fmt: skip


def test_a_change_with_unsound_progress_is_one_sentence_and_saves_nothing(
    store: SessionStore, new_session: Make
) -> None:
    unsound = new_session()

    def backwards(saved: dict[str, Any]) -> Change:
        return Change(5, {**saved, "active": -5.0}, changed=RECORDED)

    failed = send(store, unsound, 1, backwards)
    assert isinstance(failed, StoreError) and "active time" in failed.message
    assert store.plan_and_state(unsound)[1] == engine_state()


def test_a_failure_of_the_database_during_an_event_is_one_sentence_and_saves_nothing(
    store: SessionStore, new_session: Make
) -> None:
    sid = new_session()
    with store.engine.begin() as conn:  # a damaged database: the feedback table is gone
        conn.exec_driver_sql("ALTER TABLE feedback_events RENAME TO feedback_gone")
    change = logged("x", 12, feedback=feedback("softer", 12.0))
    expected = StoreError if store.engine.dialect.name == "sqlite" else ProgrammingError
    with pytest.raises(expected) as raised:
        store.advance(sid, seq=1, change=stamped(1, change), full=False)
    if expected is StoreError:
        assert str(raised.value).startswith("The database ")
        assert "cannot be used (no such table: feedback_events)" in str(raised.value)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE feedback_gone RENAME TO feedback_events")
    # The event was rolled back: the session is as it was.
    assert store.get(sid).seconds_done == 0
    assert store.plan_and_state(sid)[1]["seq"] == 0
