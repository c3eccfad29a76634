"""The player's events saved many to a transaction (`store.events.advance_all`), on SQLite and
PostgreSQL: each event is judged as if it were saved alone — the seq rule, its owner, its own
change — and what a batch saved is what the store reads back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update

from backrub.core.errors import BackrubError, BadInput
from backrub.core.models import FeedbackEvent
from backrub.store import NoSuchSession, SessionStore, StoreError
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
    is saved); `seen` collects the state each call was given."""

    def change(saved: dict[str, Any]) -> Change:
        if seen is not None:
            seen.append(saved)
        state = {**saved, "log": [*saved.get("log", []), label]}
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
    return Advance(store.owner, session_id, seq, change, full)


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
        assert store.save_progress(sid, seq=1, seconds_done=999, state={}) is False
        assert store.save_progress(sid, seq=2, seconds_done=999, state={}) is True


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
    assert store.save_progress(sid, seq=5, seconds_done=0, state={}) is False


def test_an_ended_session_refuses_its_events(store: SessionStore, new_session: Make) -> None:
    ended, active = new_session(), new_session()
    store.save_progress(ended, seq=3, seconds_done=120, state={"log": ["kept"]})
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
    assert late.state == {"log": ["kept"]}
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
        state={},
    )
    try:
        store.advance(theirs, seq=1, change=logged("x", 1), full=False)
    except NoSuchSession as exc:
        assert exc.session_id == theirs
    else:
        raise AssertionError("another owner's session was advanced")
    assert other.plan_and_state(theirs)[1] == {}


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


def test_feedback_heard_twice_is_kept_once(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    sid, elsewhere = new_session(), new_session()
    softer, tender = feedback("softer", 30.5), feedback("tender", 42.0, step=2)
    results = advance_all(
        store.engine,
        [
            event(store, sid, 1, logged("a", 30, feedback=softer, tender=[])),
            event(store, sid, 2, logged("b", 31, feedback=softer, tender=[])),  # sent twice
            event(store, sid, 3, logged("c", 42, feedback=tender, tender=["upper-back"])),
            # The same words about another session are that session's own.
            event(store, elsewhere, 1, logged("d", 30, feedback=softer)),
        ],
    )
    for result in results:
        accepted(result)
    record = store.get(sid)
    assert record.feedback == (softer, tender)
    assert record.tender == ("upper-back",)
    assert store.get(elsewhere).feedback == (softer,)
    assert store.get(elsewhere).tender == ()  # no tender given: left as it was
    assert counts() == (2, 3)
    # Once more in a later batch, and a refused event's feedback: still once.
    later = advance_all(
        store.engine,
        [
            event(store, sid, 4, logged("e", 50, feedback=tender), full=True),
            event(store, sid, 4, logged("f", 50, feedback=feedback("good", 60.0))),
        ],
    )
    assert accepted(later[0]).record == store.get(sid)
    refused(later[1])
    assert store.get(sid).feedback == (softer, tender)
    assert counts() == (2, 3)


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
    big = {"log": [f"entry {n} " * 8 for n in range(200)]}  # well over the 2 KB kept in line
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
                progress_seq=1, state={"log": ["old"]}, updated_at=datetime(2026, 1, 1, tzinfo=UTC)
            )
        )
    store.advance(sid, seq=2, change=logged("elsewhere", 30), full=False)  # seq 2 again
    seen: list[dict[str, Any]] = []
    done = accepted(
        advance_all(store.engine, [event(store, sid, 3, logged("c", 40, seen=seen))], cache)[0]
    )
    assert seen[-1]["log"] == ["old", "elsewhere"]
    assert done.state["log"] == ["old", "elsewhere", "c"]
