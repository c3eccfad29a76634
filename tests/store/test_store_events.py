"""The player's events saved many to a transaction (`store.events.advance_all`), on SQLite and
PostgreSQL: each event is judged as if it were saved alone — the seq rule, its owner, its own
change — and what a batch saved is what the store reads back."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import ProgrammingError
from store_states import as_stored, document, engine_state, state_at, step

from backrub.core.errors import BackrubError, BadInput
from backrub.core.models import FeedbackEvent
from backrub.store import NoSuchSession, SessionStore, StoreError
from backrub.store.engine import writer_engine
from backrub.store.events import Advance, Advanced, Change, StateCache, advance_all
from backrub.store.tables import SessionRow

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


def event(
    store: SessionStore, session_id: str, seq: int, change: ChangeFn, *, full: bool = False
) -> Advance:
    """The event `seq` of a session: `change`, its state given that `seq`."""
    return Advance(store.owner, session_id, seq, stamped(seq, change), full)


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


def test_every_session_of_a_batch_is_saved(store: SessionStore, new_session: Make) -> None:
    ids = [new_session() for _ in range(5)]
    items = [event(store, sid, 1, logged(f"s{n}", 10 * (n + 1))) for n, sid in enumerate(ids)]
    results = advance_all(store.engine, items)
    for n, (sid, result) in enumerate(zip(ids, results, strict=True)):
        done = accepted(result)
        assert done.state["log"] == [f"s{n}"]
        # Not asked for, and accepted: no record read.
        assert done.record is None
        assert store.get(sid).seconds_done == 10 * (n + 1)
        assert store.plan_and_state(sid)[1] == done.state
        # The seq is saved too: the same seq again is now refused.
        assert store.save_progress(sid, seq=1, seconds_done=999, state=state_at(1)) is False
        assert store.save_progress(sid, seq=2, seconds_done=999, state=state_at(2)) is True


def test_an_empty_batch_saves_nothing(store: SessionStore, counts: Counts) -> None:
    assert advance_all(store.engine, []) == []
    assert counts() == (0, 0)


def test_events_of_one_session_in_a_batch_apply_in_order(
    store: SessionStore, new_session: Make
) -> None:
    sid = new_session()
    seen: list[dict[str, Any]] = []
    calls: list[str] = []
    results = advance_all(
        store.engine,
        [
            event(store, sid, 1, logged("first", 30, seen=seen)),
            event(store, sid, 4, logged("second", 60, seen=seen)),
            event(store, sid, 4, failing(BadInput("not called"), calls)),  # the same seq
            event(store, sid, 2, failing(BadInput("not called"), calls)),  # lower, after higher
            event(store, sid, 5, logged("third", 90, seen=seen)),
        ],
    )
    # Each change saw what the earlier events of the batch had made of the session.
    assert [s.get("log") for s in seen] == [None, ["first"], ["first", "second"]]
    assert calls == []
    accepted(results[0])
    second = accepted(results[1])
    for n in (2, 3):
        late = refused(results[n])
        # Refused against the state the batch had reached, which it answers with in full.
        assert late.state == second.state
        assert late.record is not None and late.record.id == sid
    assert accepted(results[4]).state["log"] == ["first", "second", "third"]
    assert store.plan_and_state(sid)[1]["log"] == ["first", "second", "third"]
    assert store.get(sid).seconds_done == 90
    assert store.plan_and_state(sid)[1] == accepted(results[4]).state
    assert store.save_progress(sid, seq=5, seconds_done=0, state=state_at(5)) is False


def test_an_ended_session_refuses_its_events(store: SessionStore, new_session: Make) -> None:
    ended, active = new_session(), new_session()
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
    results = advance_all(
        store.engine,
        [
            event(store, ended, 9, failing(BadInput("not called"), calls)),
            event(store, active, 1, logged("on", 5)),
        ],
    )
    late = refused(results[0])
    assert calls == []
    assert late.state == as_stored(kept)
    assert late.record == before and late.record.status == "finished"
    accepted(results[1])
    assert store.get(ended) == before
    assert store.plan_and_state(active)[1]["log"] == ["on"]


def test_another_owners_session_is_no_such_session_and_the_rest_is_saved(
    store: SessionStore, other: SessionStore, new_session: Make
) -> None:
    mine = [new_session(), new_session()]
    theirs = new_session(into=other)
    before = (other.get(theirs), other.plan_and_state(theirs))
    calls: list[str] = []
    unknown = "0123456789abcdef0123456789abcdef"
    results = advance_all(
        store.engine,
        [
            event(store, mine[0], 1, logged("a", 10)),
            event(store, theirs, 1, failing(BadInput("not called"), calls)),
            event(store, unknown, 1, failing(BadInput("not called"), calls)),
            event(store, mine[1], 1, logged("b", 20)),
        ],
    )
    assert calls == []
    for n, sid in ((1, theirs), (2, unknown)):
        missing = results[n]
        assert isinstance(missing, NoSuchSession)
        assert missing.session_id == sid
    assert (other.get(theirs), other.plan_and_state(theirs)) == before
    assert [store.plan_and_state(sid)[1]["log"] for sid in mine] == [["a"], ["b"]]
    # Their owner still saves to it, from seq 1.
    (theirs_now,) = advance_all(store.engine, [event(other, theirs, 1, logged("theirs", 7))])
    assert accepted(theirs_now).state["log"] == ["theirs"]


def test_the_store_raises_for_a_batch_of_one(store: SessionStore, other: SessionStore) -> None:
    theirs = other.create(
        started_at=datetime(2025, 3, 1, tzinfo=UTC),
        mode="self",
        minutes_planned=20,
        focus=(),
        verdict="clear",
        verdict_conditions=(),
        tension_before=None,
        plan={},
        state=engine_state(),
    )
    try:
        store.advance(theirs, seq=1, change=logged("x", 1), full=False)
    except NoSuchSession as exc:
        assert exc.session_id == theirs
    else:
        raise AssertionError("another owner's session was advanced")
    assert other.plan_and_state(theirs)[1] == engine_state()


def test_a_change_that_fails_leaves_its_session_and_holds_back_no_other(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    broken, damaged, fine = new_session(), new_session(), new_session()
    # An earlier event of the batch is kept: the failure undoes only its own change.
    first = event(store, broken, 1, logged("kept", 15))
    bad = BadInput("That step does not exist.")

    def not_plain(saved: dict[str, Any]) -> Change:
        return Change(seconds_done=40, state={**saved, "when": datetime.now(UTC)})

    def unknown_feedback(saved: dict[str, Any]) -> Change:
        wrong = FeedbackEvent("tickle", 3.0, 0, "upper-back")  # type: ignore[arg-type]
        return Change(40, {**saved, "log": ["heard"]}, feedback=wrong, tender=["upper-back"])

    results = advance_all(
        store.engine,
        [
            first,
            event(store, broken, 2, failing(bad)),
            event(store, damaged, 1, not_plain),
            event(store, damaged, 2, unknown_feedback),
            event(store, fine, 1, logged("saved", 50)),
        ],
    )
    accepted(results[0])
    assert results[1] is bad
    assert isinstance(results[2], StoreError) and "plain JSON data" in results[2].message
    assert isinstance(results[3], StoreError) and "feedback kind" in results[3].message
    accepted(results[4])
    assert store.plan_and_state(broken)[1]["log"] == ["kept"]
    assert store.get(broken).seconds_done == 15
    untouched = store.get(damaged)
    assert (untouched.seconds_done, untouched.tender, untouched.feedback) == (0, (), ())
    assert "log" not in store.plan_and_state(damaged)[1]
    assert store.plan_and_state(fine)[1]["log"] == ["saved"]
    assert counts() == (3, 0)
    # A failed event moved no seq forward: the same seqs are taken next time.
    again = advance_all(
        store.engine,
        [event(store, broken, 2, logged("now", 20)), event(store, damaged, 1, logged("now", 1))],
    )
    assert [accepted(r).state["log"] for r in again] == [["kept", "now"], ["now"]]


def test_every_feedback_heard_is_kept_the_same_words_twice_too(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    """Each accepted event's feedback is a row of its own: the same words at the same moment
    twice (tapped twice while paused) are two events, each of which re-planned the session. A
    refused event's feedback is not kept: it changed nothing."""
    sid, elsewhere = new_session(), new_session()
    softer, tender = feedback("softer", 30.5), feedback("tender", 42.0, step=2)
    results = advance_all(
        store.engine,
        [
            event(store, sid, 1, logged("a", 30, feedback=softer, tender=[])),
            event(store, sid, 2, logged("b", 31, feedback=softer, tender=[])),  # tapped again
            event(store, sid, 3, logged("c", 42, feedback=tender, tender=["upper-back"])),
            # The same words about another session are that session's own.
            event(store, elsewhere, 1, logged("d", 30, feedback=softer)),
        ],
    )
    for result in results:
        accepted(result)
    record = store.get(sid)
    assert record.feedback == (softer, softer, tender)
    assert record.tender == ("upper-back",)
    assert store.get(elsewhere).feedback == (softer,)
    assert store.get(elsewhere).tender == ()  # no tender given: left as it was
    assert counts() == (2, 4)
    # In a later batch: an accepted event's feedback is kept, a refused one's is not.
    later = advance_all(
        store.engine,
        [
            event(store, sid, 4, logged("e", 50, feedback=tender), full=True),
            event(store, sid, 4, logged("f", 50, feedback=feedback("good", 60.0))),
        ],
    )
    assert accepted(later[0]).record == store.get(sid)
    refused(later[1])
    assert store.get(sid).feedback == (softer, softer, tender, tender)
    assert counts() == (2, 5)


def test_feedback_at_one_moment_keeps_the_order_it_was_heard_in(
    store: SessionStore, new_session: Make
) -> None:
    """Words said at the same moment (tapped one after another while paused), in one batch,
    come back in the order they were heard, not in any order of their own."""
    sid = new_session()
    said = [feedback(kind, 30.0) for kind in ("softer", "firmer", "tender", "good", "softer")]
    results = advance_all(
        store.engine,
        [event(store, sid, n, logged(f"s{n}", 30, feedback=f)) for n, f in enumerate(said, 1)],
    )
    for result in results:
        accepted(result)
    assert store.get(sid).feedback == tuple(said)


def test_a_full_answer_reads_the_record(store: SessionStore, new_session: Make) -> None:
    sid, plain = new_session(), new_session()
    heard = feedback("firmer", 12.0)
    results = advance_all(
        store.engine,
        [
            event(store, sid, 1, logged("a", 12, feedback=heard, tender=["neck"]), full=True),
            event(store, plain, 1, logged("b", 5)),
        ],
    )
    done = accepted(results[0])
    assert done.record == store.get(sid)
    assert done.record is not None
    assert (done.record.seconds_done, done.record.feedback, done.record.tender) == (
        12, (heard,), ("neck",),
    )  # fmt: skip
    assert accepted(results[1]).record is None


def test_two_full_events_of_one_session_share_the_record_read_after_the_batch(
    store: SessionStore, new_session: Make
) -> None:
    """As documented: each keeps its own state; the record is the one the batch left."""
    sid = new_session()
    results = advance_all(
        store.engine,
        [
            event(store, sid, 1, logged("a", 10, feedback=feedback("good", 10.0)), full=True),
            event(store, sid, 2, logged("b", 20, feedback=feedback("softer", 20.0)), full=True),
        ],
    )
    first, second = accepted(results[0]), accepted(results[1])
    assert first.state["log"] == ["a"] and second.state["log"] == ["a", "b"]
    assert first.record == second.record == store.get(sid)
    assert second.record is not None and second.record.seconds_done == 20


def test_the_results_are_in_the_order_of_the_items(store: SessionStore, new_session: Make) -> None:
    # The batch reads and writes sessions in id order; the answers keep the order sent.
    ids = sorted(new_session() for _ in range(4))[::-1]
    items = [event(store, sid, 1, logged(sid, n), full=n % 2 == 1) for n, sid in enumerate(ids)]
    items.insert(2, event(store, ids[0], 1, logged("stale", 0)))
    results = advance_all(store.engine, items)
    assert len(results) == len(items)
    assert [r.state["log"] for r in results if isinstance(r, Advanced)] == [
        [ids[0]], [ids[1]], [ids[0]], [ids[2]], [ids[3]],
    ]  # fmt: skip
    assert [isinstance(r, Advanced) and r.accepted for r in results] == [
        True, True, False, True, True,
    ]  # fmt: skip
    for item, result in zip(items, results, strict=True):
        assert isinstance(result, Advanced)
        if result.record is not None:
            assert result.record.id == item.session_id


def test_two_writers_batching_the_same_sessions_in_opposite_orders_lose_nothing(
    store: SessionStore, new_session: Make
) -> None:
    """Rows are locked in id order, whatever the order of the events: no deadlock, and each
    session ends at the highest seq either writer sent."""
    ids = [new_session() for _ in range(4)]
    rounds = 25
    failures: list[BaseException] = []
    accepted_seqs: dict[str, list[int]] = {sid: [] for sid in ids}
    lock = threading.Lock()

    def write(first: int, order: list[str]) -> None:
        try:
            for n in range(rounds):
                seq = 2 * n + first
                items = [event(store, sid, seq, logged(str(seq), seq)) for sid in order]
                for sid, result in zip(order, advance_all(store.engine, items), strict=True):
                    assert isinstance(result, Advanced)
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


# ---- the states a writer remembers (StateCache) ---------------------------------------------


def test_a_remembered_state_is_used_only_while_no_one_else_has_saved(
    store: SessionStore, new_session: Make
) -> None:
    """A writer keeps the states it saved, and takes a session's from there — not from the
    database — only while the row still has the seq it saved: a save by anyone else (another
    process, the CLI) raises the seq, so the next batch reads what they saved."""
    sid, other = new_session(), new_session()
    cache = StateCache()
    seen: list[dict[str, Any]] = []
    first = accepted(advance_all(store.engine, [event(store, sid, 1, logged("a", 10))], cache)[0])
    # Not read again: the very state this writer saved is what its next change is given.
    advance_all(store.engine, [event(store, sid, 2, logged("b", 20, seen=seen))], cache)
    assert seen[-1] is first.state
    # Someone else saves this session (a batch of one, without this writer's cache)...
    store.advance(sid, seq=3, change=logged("elsewhere", 30), full=False)
    # ...so the writer's next change is given that save, read from the database.
    third = accepted(
        advance_all(store.engine, [event(store, sid, 4, logged("c", 40, seen=seen))], cache)[0]
    )
    assert seen[-1]["log"] == ["a", "b", "elsewhere"]
    assert third.state["log"] == ["a", "b", "elsewhere", "c"]
    assert store.plan_and_state(sid)[1] == third.state
    # A session it never saved is read from the database too; both in one batch.
    both = advance_all(
        store.engine,
        [event(store, other, 1, logged("x", 5, seen=seen)), event(store, sid, 5, logged("d", 50))],
        cache,
    )
    assert seen[-1].get("log") is None
    assert accepted(both[1]).state["log"] == ["a", "b", "elsewhere", "c", "d"]
    assert store.plan_and_state(other)[1] == accepted(both[0]).state


def test_a_saved_state_is_compressed_with_lz4_on_postgresql(
    store: SessionStore, new_session: Make
) -> None:
    """A state is written again at every save: PostgreSQL compresses it with lz4, a fraction of
    the default's work (this server has lz4: PostgreSQL 15, Debian's build)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not compress")
    sid = new_session()
    # Well over the 2 KB kept in line.
    big = engine_state(active=1.0, log=[f"entry {n} " * 8 for n in range(200)])
    accepted(advance_all(store.engine, [event(store, sid, 1, lambda _saved: Change(1, big))])[0])
    with store.engine.connect() as conn:
        method = conn.exec_driver_sql(
            "SELECT pg_column_compression(state) FROM sessions WHERE id = %(id)s", {"id": sid}
        ).scalar_one()
    assert method == "lz4"


def test_a_remembered_state_is_not_used_after_the_seq_went_back(
    store: SessionStore, new_session: Make
) -> None:
    """A seq can go back — a restore of an older backup, a database server that lost its last
    commits — and then someone else's save may reach the very seq the writer remembers: the
    writer must still read what they saved."""
    sid = new_session()
    cache = StateCache()
    advance_all(store.engine, [event(store, sid, 1, logged("a", 10))], cache)
    advance_all(store.engine, [event(store, sid, 2, logged("b", 20))], cache)
    # As an older copy restored over it: seq 1, an earlier state, the time of that copy.
    with store.engine.begin() as conn:
        conn.execute(
            update(SessionRow)
            .where(SessionRow.id == sid)
            .values(
                progress_seq=1,
                state=document(engine_state(log=["old"])),
                active=5.0,
                fired=[],
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    store.advance(sid, seq=2, change=logged("elsewhere", 30), full=False)  # seq 2 again
    seen: list[dict[str, Any]] = []
    done = accepted(
        advance_all(store.engine, [event(store, sid, 3, logged("c", 40, seen=seen))], cache)[0]
    )
    assert seen[-1]["log"] == ["old", "elsewhere"]
    assert done.state["log"] == ["old", "elsewhere", "c"]


# ---- a progress save writes the progress alone ----------------------------------------------

# The fields a progress save, pause or resume changes (web/sessions.py sends these).
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
    # Progress saves in a batch, with a writer's cache and without, and alone.
    cache = StateCache()
    advance_all(
        store.engine,
        [
            event(store, sid, 1, recorded(15.5, ["step:0"])),
            event(store, sid, 2, recorded(31.25, ["check:0"])),
        ],
        cache,
    )
    advance_all(store.engine, [event(store, sid, 3, recorded(40.0, []))], cache)
    done = store.advance(sid, seq=4, change=stamped(4, recorded(45.0, ["half:0"])), full=False)
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


def test_a_batch_writes_the_documents_of_the_sessions_whose_timeline_changed(
    store: SessionStore, new_session: Make, doc_writes: Callable[[], list[str]]
) -> None:
    """In one batch: a session extended, then saved (its document written once, with the
    extension); another only saved (its document left as it was)."""
    extended, saved_only = new_session(state=long_session()), new_session(state=long_session())
    untouched = stored_row(store, saved_only)

    def extend(saved: dict[str, Any]) -> Change:
        longer = [150.0, *saved["durations"][1:]]
        return Change(20, {**saved, "durations": longer}, changed=["durations"])

    results = advance_all(
        store.engine,
        [
            event(store, extended, 1, extend),
            event(store, extended, 2, recorded(30.0, ["check:0"])),
            event(store, saved_only, 1, recorded(12.0, ["step:0"])),
        ],
    )
    for result in results:
        accepted(result)
    assert doc_writes() == [extended]
    state = store.plan_and_state(extended)[1]
    assert (state["durations"][0], state["active"], state["fired"], state["seq"]) == (
        150.0, 30.0, ["check:0"], 2,
    )  # fmt: skip
    assert stored_row(store, saved_only)["state"] == untouched["state"]
    assert stored_row(store, saved_only)["active"] == 12.0


def test_a_change_with_unsound_progress_holds_back_no_other_event(
    store: SessionStore, new_session: Make
) -> None:
    unsound, fine = new_session(), new_session()

    def backwards(saved: dict[str, Any]) -> Change:
        return Change(5, {**saved, "active": -5.0}, changed=RECORDED)

    results = advance_all(
        store.engine,
        [event(store, unsound, 1, backwards), event(store, fine, 1, logged("saved", 10))],
    )
    assert isinstance(results[0], StoreError) and "active time" in results[0].message
    accepted(results[1])
    assert store.plan_and_state(fine)[1]["log"] == ["saved"]
    assert store.plan_and_state(unsound)[1] == engine_state()


# ---- the statements run on the driver's cursor (store/event_sql.py) ---------------------------

COLUMNS = ("state", "active", "started", "fired", "tender", "updated_at", "progress_seq")


def test_a_batch_writes_each_column_as_sqlalchemy_writes_it(
    store: SessionStore, new_session: Make
) -> None:
    """A batch's save bypasses SQLAlchemy's `execute`: what it writes must read back through
    SQLAlchemy as the same values, and be stored as SQLAlchemy itself stores them."""
    by_batch, by_orm = new_session(), new_session()
    before = datetime.now(UTC)
    heard = feedback("softer", 12.5)
    (result,) = advance_all(
        store.engine, [event(store, by_batch, 1, logged("x", 12, feedback=heard, tender=["neck"]))]
    )
    after = datetime.now(UTC)
    saved = accepted(result).state

    def read() -> dict[str, Any]:
        with store.engine.connect() as conn:
            columns = (getattr(SessionRow, c) for c in COLUMNS)
            return {row.id: row for row in conn.execute(select(SessionRow.id, *columns))}

    # The same values written through SQLAlchemy, the time as the batch's was read back.
    with store.engine.begin() as conn:
        conn.execute(
            update(SessionRow)
            .where(SessionRow.id == by_orm)
            .values(
                state=document(saved),
                active=12.0,
                started=True,
                fired=[],
                tender=["neck"],
                updated_at=read()[by_batch].updated_at,
                progress_seq=1,
            )
        )
    rows = read()
    # Read through SQLAlchemy: the values the batch meant, of the types the columns give.
    batch, orm = rows[by_batch], rows[by_orm]
    assert batch.state == document(saved) == orm.state
    assert (batch.active, batch.started, batch.fired, batch.tender) == (12.0, True, [], ["neck"])
    assert batch.started is True and orm.started is True
    assert before <= batch.updated_at <= after
    assert batch.updated_at == orm.updated_at
    assert batch.updated_at.utcoffset() == orm.updated_at.utcoffset() == timedelta(0)
    assert store.get(by_batch).feedback == (heard,)
    # Stored alike: on SQLite, the same storage classes and the very same text of the time.
    if store.engine.dialect.name == "sqlite":
        columns = ("updated_at", "started", "fired", "state")
        types = ", ".join(f"typeof({c}), length({c})" for c in columns) + ", updated_at"
        with store.engine.connect() as conn:
            stored = {
                sid: conn.exec_driver_sql(
                    f"SELECT {types} FROM sessions WHERE id = ?",  # noqa: S608 (fixed names)
                    (sid,),
                ).one()
                for sid in (by_batch, by_orm)
            }
        assert stored[by_batch] == stored[by_orm]


def test_a_failure_of_the_database_during_a_batch_is_one_sentence_and_saves_nothing(
    store: SessionStore, new_session: Make
) -> None:
    sid = new_session()
    with store.engine.begin() as conn:  # a damaged database: the feedback table is gone
        conn.exec_driver_sql("ALTER TABLE feedback_events RENAME TO feedback_gone")
    change = logged("x", 12, feedback=feedback("softer", 12.0))
    expected = StoreError if store.engine.dialect.name == "sqlite" else ProgrammingError
    with pytest.raises(expected) as raised:
        advance_all(store.engine, [event(store, sid, 1, change)])
    if expected is StoreError:
        assert str(raised.value).startswith("The database ")
        assert "cannot be used (no such table: feedback_events)" in str(raised.value)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE feedback_gone RENAME TO feedback_events")
    # The batch was rolled back: the session is as it was.
    assert store.get(sid).seconds_done == 0
    assert store.plan_and_state(sid)[1]["seq"] == 0


def test_a_writer_whose_connection_was_dropped_fails_one_batch_then_saves(
    store: SessionStore, new_session: Make
) -> None:
    """The event writer's engine does not ping before each batch (store/engine.py): a connection
    the server dropped must fail one batch with the store's sentence, and be replaced."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    writer = writer_engine(store.engine)
    try:
        sid = new_session()
        accepted(advance_all(writer, [event(store, sid, 1, logged("a", 5))])[0])
        with store.engine.begin() as conn:
            dropped = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar_one()
        assert dropped >= 1
        with pytest.raises(StoreError, match="cannot be used"):
            advance_all(writer, [event(store, sid, 2, logged("b", 10))])
        accepted(advance_all(writer, [event(store, sid, 2, logged("b", 10))])[0])
        assert store.plan_and_state(sid)[1]["log"] == ["a", "b"]
    finally:
        writer.dispose()
