"""SessionStore against real SQLite and PostgreSQL databases: what goes in comes out, scoped to
its owner, and bad values are refused before anything is written."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from backrub.core.models import FeedbackEvent, Focus, SessionRecord
from backrub.store import NoSuchSession, SessionStore, StoreError
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable

    from backrub.core.models import FeedbackKind

    Make = Callable[..., str]
    Counts = Callable[..., tuple[int, int]]
    Values = Callable[..., dict[str, Any]]

TENDER = FeedbackEvent(kind="tender", at=95.5, step=3, region="upper-back")


def test_every_field_round_trips(store: SessionStore, values: Values) -> None:
    given = values(started_at=datetime(2025, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=2))))
    session_id = store.create(**given)
    assert store.plan_and_state(session_id) == (given["plan"], given["state"])
    assert store.save_progress(session_id, seq=1, seconds_done=60, state={"step": 1})
    store.add_feedback(
        session_id,
        event=TENDER,
        seq=2,
        seconds_done=96,
        state={"step": 3, "tender": ["upper-back"]},
        tender=["upper-back"],
    )
    ended = datetime(2025, 3, 1, 20, 2, 3, 456789, tzinfo=UTC)
    store.finish(
        session_id,
        status="finished",
        seconds_done=1790,
        tension_after=3,
        note="Much looser.",
        ended_at=ended,
    )

    record = store.get(session_id)
    assert record == SessionRecord(
        id=session_id,
        started_at=datetime(2025, 3, 1, 19, 30, tzinfo=UTC),
        mode="partner",
        minutes_planned=30,
        seconds_done=1790,
        status="finished",
        focus=(Focus("upper-back", 8), Focus("lower-back", 5)),
        verdict="caution",
        verdict_conditions=("sunburn",),
        tension_before=7,
        tension_after=3,
        note="Much looser.",
        tender=("upper-back",),
        feedback=(TENDER,),
        ended_at=ended,
    )
    # Aware UTC on both backends, whatever zone it was given in.
    assert record.started_at.utcoffset() == timedelta(0)
    assert record.ended_at is not None
    assert record.ended_at.tzinfo is UTC
    assert store.plan_and_state(session_id) == (
        given["plan"],
        {"step": 3, "tender": ["upper-back"]},
    )
    assert store.sessions() == [record]


def test_new_session_is_active_and_offered_for_resuming(
    store: SessionStore, new_session: Make
) -> None:
    assert store.latest_unfinished() is None
    first = new_session(started_at=datetime(2025, 3, 1, tzinfo=UTC))
    newest = new_session(started_at=datetime(2025, 3, 2, tzinfo=UTC))
    new_session(started_at=datetime(2025, 2, 1, tzinfo=UTC))
    record = store.get(newest)
    assert (record.status, record.seconds_done, record.feedback, record.tender) == (
        "active",
        0,
        (),
        (),
    )
    assert store.latest_unfinished() == newest
    store.finish(
        newest,
        status="stopped",
        seconds_done=10,
        tension_after=None,
        note=None,
        ended_at=datetime(2025, 3, 2, 0, 1, tzinfo=UTC),
    )
    assert store.latest_unfinished() == first
    assert store.get(newest).status == "stopped"


def test_sessions_are_ordered_and_limited(store: SessionStore, new_session: Make) -> None:
    days = [5, 1, 3, 2, 4]
    ids = {day: new_session(started_at=datetime(2025, 3, day, tzinfo=UTC)) for day in days}
    store.add_feedback(ids[5], event=TENDER, seq=1, seconds_done=1, state={}, tender=[])
    store.add_feedback(ids[1], event=TENDER, seq=1, seconds_done=1, state={}, tender=[])
    assert [s.id for s in store.sessions()] == [ids[d] for d in (5, 4, 3, 2, 1)]
    assert [s.id for s in store.sessions(newest_first=False)] == [ids[d] for d in (1, 2, 3, 4, 5)]
    newest = store.sessions(limit=2)
    assert [s.id for s in newest] == [ids[5], ids[4]]
    assert [s.feedback for s in newest] == [(TENDER,), ()]
    oldest = store.sessions(newest_first=False, limit=1)
    assert [(s.id, s.feedback) for s in oldest] == [(ids[1], (TENDER,))]
    assert store.sessions(limit=0) == []


def test_unknown_id_is_one_clear_sentence(store: SessionStore) -> None:
    with pytest.raises(NoSuchSession, match=r"^No session 'nope' is stored; .*\.$"):
        store.get("nope")
    for call in (
        lambda: store.plan_and_state("nope"),
        lambda: store.save_progress("nope", seq=1, seconds_done=1, state={}),
        lambda: store.add_feedback(
            "nope", event=TENDER, seq=1, seconds_done=1, state={}, tender=[]
        ),
        lambda: store.finish(
            "nope",
            status="finished",
            seconds_done=1,
            tension_after=None,
            note=None,
            ended_at=datetime.now(UTC),
        ),
    ):
        with pytest.raises(StoreError, match=r"^No session"):
            call()


def test_another_owner_sees_nothing(
    store: SessionStore, other: SessionStore, new_session: Make, counts: Counts
) -> None:
    mine = new_session()
    store.add_feedback(mine, event=TENDER, seq=1, seconds_done=5, state={}, tender=["upper-back"])
    theirs = new_session(into=other, mode="self")

    with pytest.raises(NoSuchSession):
        other.get(mine)
    with pytest.raises(NoSuchSession):
        other.plan_and_state(mine)
    with pytest.raises(NoSuchSession):
        other.save_progress(mine, seq=9, seconds_done=9, state={})
    with pytest.raises(NoSuchSession):
        other.add_feedback(mine, event=TENDER, seq=9, seconds_done=9, state={}, tender=[])
    with pytest.raises(NoSuchSession):
        other.finish(
            mine,
            status="stopped",
            seconds_done=1,
            tension_after=None,
            note=None,
            ended_at=datetime.now(UTC),
        )
    assert [s.id for s in other.sessions()] == [theirs]
    assert other.latest_unfinished() == theirs
    assert [s["id"] for s in other.export()["sessions"]] == [theirs]

    assert other.forget() == 1
    assert counts() == (1, 1)
    assert store.get(mine).seconds_done == 5
    assert store.get(mine).feedback == (TENDER,)


def test_a_save_never_moves_progress_backwards(store: SessionStore, new_session: Make) -> None:
    session_id = new_session()
    assert store.save_progress(session_id, seq=1, seconds_done=100, state={"at": 1})
    assert store.save_progress(session_id, seq=5, seconds_done=500, state={"at": 5})
    # Late, duplicated and out-of-order saves are ignored.
    assert not store.save_progress(session_id, seq=5, seconds_done=999, state={"at": "dup"})
    assert not store.save_progress(session_id, seq=3, seconds_done=300, state={"at": 3})
    assert not store.save_progress(session_id, seq=0, seconds_done=0, state={})
    assert store.get(session_id).seconds_done == 500
    assert store.plan_and_state(session_id)[1] == {"at": 5}
    assert store.save_progress(session_id, seq=6, seconds_done=600, state={"at": 6})
    assert store.get(session_id).seconds_done == 600


def test_feedback_progress_and_tender_are_saved_together(
    store: SessionStore, new_session: Make, counts: Counts
) -> None:
    session_id = new_session()
    softer = FeedbackEvent("softer", 40.0, 1, "lower-back")
    store.add_feedback(
        session_id,
        event=softer,
        seq=2,
        seconds_done=40,
        state={"s": 2},
        tender=["lower-back", "upper-back", "lower-back"],
    )
    record = store.get(session_id)
    assert (record.seconds_done, record.tender, record.feedback) == (
        40,
        ("lower-back", "upper-back"),
        (softer,),
    )

    # A late feedback (seq already passed) is still kept, but moves nothing back.
    assert store.save_progress(session_id, seq=4, seconds_done=80, state={"s": 4})
    late = FeedbackEvent("good", 30.0, 1, "lower-back")
    store.add_feedback(session_id, event=late, seq=3, seconds_done=60, state={"s": 3}, tender=[])
    record = store.get(session_id)
    assert (record.seconds_done, record.tender) == (80, ("lower-back", "upper-back"))
    assert record.feedback == (late, softer)  # by time in the session
    assert store.plan_and_state(session_id)[1] == {"s": 4}

    # The same event delivered twice is kept once.
    store.add_feedback(
        session_id, event=softer, seq=5, seconds_done=90, state={"s": 5}, tender=["upper-back"]
    )
    record = store.get(session_id)
    assert len(record.feedback) == 2
    assert (record.seconds_done, record.tender) == (90, ("upper-back",))
    assert counts() == (1, 2)


def test_an_ended_session_stays_as_it_was_saved(store: SessionStore, new_session: Make) -> None:
    session_id = new_session()
    store.finish(
        session_id,
        status="stopped",
        seconds_done=300,
        tension_after=4,
        note=None,
        ended_at=datetime(2025, 3, 1, 19, 36, tzinfo=UTC),
    )
    saved = store.get(session_id)
    assert not store.save_progress(session_id, seq=10, seconds_done=900, state={})
    with pytest.raises(StoreError, match="has ended"):
        store.add_feedback(session_id, event=TENDER, seq=11, seconds_done=9, state={}, tender=[])
    with pytest.raises(StoreError, match="already ended"):
        store.finish(
            session_id,
            status="finished",
            seconds_done=1,
            tension_after=0,
            note="x",
            ended_at=datetime(2025, 3, 1, 20, tzinfo=UTC),
        )
    assert store.get(session_id) == saved


def test_export_holds_everything_of_this_owner(
    store: SessionStore, other: SessionStore, new_session: Make, counts: Counts
) -> None:
    first = new_session(started_at=datetime(2025, 3, 1, tzinfo=UTC))
    second = new_session(started_at=datetime(2025, 3, 8, tzinfo=UTC))
    kinds: tuple[FeedbackKind, ...] = ("good", "softer", "firmer")
    for n, kind in enumerate(kinds):
        store.add_feedback(
            second,
            event=FeedbackEvent(kind, float(n), 0, "upper-back"),
            seq=n + 1,
            seconds_done=n,
            state={"n": n},
            tender=[],
        )
    store.finish(
        first,
        status="finished",
        seconds_done=1800,
        tension_after=2,
        note="Good.",
        ended_at=datetime(2025, 3, 1, 0, 30, tzinfo=UTC),
    )
    new_session(into=other)

    exported = store.export()
    assert json.loads(json.dumps(exported)) == exported  # JSON-ready as it is
    assert exported["format"] == {"name": "backrub-export", "version": 1}
    assert exported["owner"] == "local"
    sessions = exported["sessions"]
    assert (len(sessions), sum(len(s["feedback"]) for s in sessions)) == counts("local") == (2, 3)
    assert [s["id"] for s in sessions] == [first, second]

    # Every stored column is in the export (a new column must be exported too).
    session_columns = set(SessionRow.__table__.columns.keys()) - {"owner"}
    event_columns = set(FeedbackRow.__table__.columns.keys()) - {"id", "session_id"}
    for session in sessions:
        assert session_columns <= set(session)
        assert all(set(e) == event_columns for e in session["feedback"])
    done = sessions[0]
    assert done["started_at"] == "2025-03-01T00:00:00+00:00"
    assert done["ended_at"] == "2025-03-01T00:30:00+00:00"
    assert datetime.fromisoformat(done["updated_at"]).tzinfo is not None
    assert (done["tension_after"], done["note"], done["status"]) == (2, "Good.", "finished")
    assert done["plan"] == store.plan_and_state(first)[0]
    assert done["focus"] == [
        {"region": "upper-back", "tension": 8},
        {"region": "lower-back", "tension": 5},
    ]
    assert sessions[1]["state"] == {"n": 2}
    assert [e["kind"] for e in sessions[1]["feedback"]] == ["good", "softer", "firmer"]
    assert "answers" not in json.dumps(exported)


def test_forget_deletes_everything_of_this_owner_only(
    store: SessionStore, other: SessionStore, new_session: Make, counts: Counts
) -> None:
    mine = [new_session(), new_session()]
    for session_id in mine:
        store.add_feedback(session_id, event=TENDER, seq=1, seconds_done=1, state={}, tender=[])
    theirs = new_session(into=other)
    other.add_feedback(theirs, event=TENDER, seq=1, seconds_done=1, state={}, tender=[])

    assert store.forget() == 2
    assert counts("local") == (0, 0)
    assert counts() == (1, 1)
    assert store.sessions() == []
    assert store.export()["sessions"] == []
    assert other.get(theirs).feedback == (TENDER,)
    assert store.forget() == 0


BAD_CREATE: list[tuple[str, object]] = [
    ("tension_before", 11),
    ("tension_before", -1),
    ("tension_before", True),
    ("tension_before", "5"),
    ("mode", "both"),
    ("minutes_planned", 0),
    ("verdict", "stop"),
    ("verdict", "maybe"),
    ("verdict_conditions", "sunburn"),
    ("focus", [Focus("upper-back", 11)]),
    ("focus", [("upper-back",)]),
    ("started_at", datetime(2025, 3, 1)),  # noqa: DTZ001 (naive on purpose)
    ("plan", {"steps": {1, 2}}),
    ("plan", {"x": math.nan}),
    ("state", {1: "int key"}),
    ("state", ["not", "a", "dict"]),
    ("state", {"when": datetime(2025, 3, 1, tzinfo=UTC)}),
    ("state", {"seq": 2**70}),
    ("plan", {"steps": [{"x": -math.inf}]}),
]


@pytest.mark.parametrize(("field", "bad"), BAD_CREATE)
def test_bad_values_are_refused_and_nothing_is_written(
    store: SessionStore, values: Values, counts: Counts, field: str, bad: object
) -> None:
    with pytest.raises(StoreError) as caught:
        store.create(**values(**{field: bad}))
    message = caught.value.message
    assert message.endswith(".")
    assert message[0].isupper()
    assert "\n" not in message
    assert counts() == (0, 0)


BAD_UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("save_progress", {"seq": 2, "seconds_done": -1, "state": {}}),
    ("save_progress", {"seq": -1, "seconds_done": 1, "state": {}}),
    ("save_progress", {"seq": 2, "seconds_done": 1, "state": {"x": math.inf}}),
    (
        "add_feedback",
        {
            "event": FeedbackEvent("harder", 1.0, 0, "x"),  # type: ignore[arg-type]
            "seq": 2,
            "seconds_done": 1,
            "state": {},
            "tender": [],
        },
    ),
    (
        "add_feedback",
        {
            "event": FeedbackEvent("good", -1.0, 0, "x"),
            "seq": 2,
            "seconds_done": 1,
            "state": {},
            "tender": [],
        },
    ),
    ("add_feedback", {"event": TENDER, "seq": 2, "seconds_done": 1, "state": {}, "tender": [""]}),
    (
        "finish",
        {
            "status": "active",
            "seconds_done": 1,
            "tension_after": 1,
            "note": None,
            "ended_at": datetime(2025, 3, 2, tzinfo=UTC),
        },
    ),
    (
        "finish",
        {
            "status": "finished",
            "seconds_done": 1,
            "tension_after": 12,
            "note": None,
            "ended_at": datetime(2025, 3, 2, tzinfo=UTC),
        },
    ),
    (
        "finish",
        {
            "status": "finished",
            "seconds_done": -5,
            "tension_after": 1,
            "note": None,
            "ended_at": datetime(2025, 3, 2, tzinfo=UTC),
        },
    ),
    (
        "finish",
        {
            "status": "finished",
            "seconds_done": 5,
            "tension_after": 1,
            "note": "x" * 2001,
            "ended_at": datetime(2025, 3, 2, tzinfo=UTC),
        },
    ),
    (
        "finish",
        {
            "status": "finished",
            "seconds_done": 5,
            "tension_after": 1,
            "note": None,
            "ended_at": datetime(2025, 2, 1, tzinfo=UTC),
        },
    ),
]


@pytest.mark.parametrize(("method", "kwargs"), BAD_UPDATES)
def test_bad_updates_leave_the_session_as_it_was(
    store: SessionStore, new_session: Make, method: str, kwargs: dict[str, Any]
) -> None:
    session_id = new_session()
    store.save_progress(session_id, seq=1, seconds_done=10, state={"kept": True})
    before = (store.get(session_id), store.plan_and_state(session_id))
    with pytest.raises(StoreError):
        getattr(store, method)(session_id, **kwargs)
    assert (store.get(session_id), store.plan_and_state(session_id)) == before


def test_an_owner_must_be_named(store: SessionStore) -> None:
    with pytest.raises(StoreError, match="owner"):
        SessionStore(store.engine, owner=" ")


def test_stored_rows_are_plain_values(store: SessionStore, new_session: Make) -> None:
    """JSON columns hold JSON, times hold UTC: what another tool reading the file would see."""
    session_id = new_session()
    with store.engine.connect() as conn:
        row = conn.execute(
            select(SessionRow.focus, SessionRow.tender).where(SessionRow.id == session_id)
        ).one()
    assert row.focus == [
        {"region": "upper-back", "tension": 8},
        {"region": "lower-back", "tension": 5},
    ]
    assert row.tender == []
