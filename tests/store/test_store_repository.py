"""SessionStore against real SQLite and PostgreSQL databases: what goes in comes out, scoped to
its owner, and bad values are refused before anything is written."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from store_states import as_stored, document, engine_state, one_sentence, state_at

from backrub.core.models import FeedbackEvent, Focus, SessionRecord
from backrub.store import NoSuchSession, SessionStore, StoreError
from backrub.store.events import Change
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from backrub.core.models import FeedbackKind

    Make = Callable[..., str]
    Counts = Callable[..., tuple[int, int]]
    Values = Callable[..., dict[str, Any]]

TENDER = FeedbackEvent(kind="tender", at=95.5, step=3, region="upper-back")


def test_every_field_round_trips(store: SessionStore, values: Values) -> None:
    given = values(started_at=datetime(2025, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=2))))
    session_id = store.create(**given)
    assert store.plan_and_state(session_id) == (given["plan"], given["state"])
    moved = engine_state(active=60.25, fired=["check:0"], durations=[100.0, 120.0])
    # The row's seq is the state's: the one this save was made with.
    assert store.save_progress(session_id, seq=1, seconds_done=60, state=moved)
    assert store.plan_and_state(session_id)[1] == as_stored(moved, seq=1)
    heard = state_at(2, active=95.5, fired=["check:0", "check:1"], ceiling=2, tender=["upper-back"])
    store.add_feedback(
        session_id,
        event=TENDER,
        seq=2,
        seconds_done=96,
        # A running clock and the feedback heard are not kept in the state.
        state={**heard, "anchor": 1234.5, "feedback": [TENDER._asdict()]},
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
    assert store.plan_and_state(session_id) == (given["plan"], heard)
    assert "feedback" not in heard and heard["anchor"] is None
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
    for day in (5, 1):
        store.add_feedback(
            ids[day], event=TENDER, seq=1, seconds_done=1, state=state_at(1), tender=[]
        )
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
        lambda: store.save_progress("nope", seq=1, seconds_done=1, state=state_at(1)),
        lambda: store.add_feedback(
            "nope", event=TENDER, seq=1, seconds_done=1, state=state_at(1), tender=[]
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
    store.add_feedback(
        mine, event=TENDER, seq=1, seconds_done=5, state=state_at(1), tender=["upper-back"]
    )
    theirs = new_session(into=other, mode="self")

    with pytest.raises(NoSuchSession):
        other.get(mine)
    with pytest.raises(NoSuchSession):
        other.plan_and_state(mine)
    with pytest.raises(NoSuchSession):
        other.save_progress(mine, seq=9, seconds_done=9, state=state_at(9))
    with pytest.raises(NoSuchSession):
        other.add_feedback(mine, event=TENDER, seq=9, seconds_done=9, state=state_at(9), tender=[])
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
    assert store.save_progress(session_id, seq=1, seconds_done=100, state=state_at(1))
    fifth = state_at(5, fired=["check:0"])
    assert store.save_progress(session_id, seq=5, seconds_done=500, state=fifth)
    # Late, duplicated and out-of-order saves are ignored.
    dup = state_at(5, active=999.0, fired=["check:0", "check:1"], ceiling=1)
    assert not store.save_progress(session_id, seq=5, seconds_done=999, state=dup)
    assert not store.save_progress(session_id, seq=3, seconds_done=300, state=state_at(3))
    assert not store.save_progress(session_id, seq=0, seconds_done=0, state=state_at(0))
    assert store.get(session_id).seconds_done == 500
    assert store.plan_and_state(session_id)[1] == fifth
    assert store.save_progress(session_id, seq=6, seconds_done=600, state=state_at(6))
    assert store.get(session_id).seconds_done == 600
    assert store.plan_and_state(session_id)[1] == state_at(6)


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
        state=state_at(2, tender=["lower-back", "upper-back"]),
        tender=["lower-back", "upper-back", "lower-back"],
    )
    record = store.get(session_id)
    assert (record.seconds_done, record.tender, record.feedback) == (
        40,
        ("lower-back", "upper-back"),
        (softer,),
    )

    # A late feedback (seq already passed) is still kept, but moves nothing back.
    fourth = state_at(4, tender=["lower-back", "upper-back"])
    assert store.save_progress(session_id, seq=4, seconds_done=80, state=fourth)
    late = FeedbackEvent("good", 30.0, 1, "lower-back")
    store.add_feedback(session_id, event=late, seq=3, seconds_done=60, state=state_at(3), tender=[])
    record = store.get(session_id)
    assert (record.seconds_done, record.tender) == (80, ("lower-back", "upper-back"))
    assert record.feedback == (late, softer)  # by time in the session
    assert store.plan_and_state(session_id)[1] == fourth

    # The same words at the same moment again (tapped twice while paused): another event.
    fifth = state_at(5, tender=["upper-back"])
    store.add_feedback(
        session_id, event=softer, seq=5, seconds_done=90, state=fifth, tender=["upper-back"]
    )
    record = store.get(session_id)
    assert record.feedback == (late, softer, softer)
    assert (record.seconds_done, record.tender) == (90, ("upper-back",))
    assert store.plan_and_state(session_id)[1] == fifth
    assert counts() == (1, 3)


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
    saved = (store.get(session_id), store.plan_and_state(session_id))
    assert not store.save_progress(session_id, seq=10, seconds_done=900, state=state_at(10))
    with pytest.raises(StoreError, match="has ended"):
        store.add_feedback(
            session_id, event=TENDER, seq=11, seconds_done=9, state=state_at(11), tender=[]
        )
    with pytest.raises(StoreError, match="already ended"):
        store.finish(
            session_id,
            status="finished",
            seconds_done=1,
            tension_after=0,
            note="x",
            ended_at=datetime(2025, 3, 1, 20, tzinfo=UTC),
        )
    assert (store.get(session_id), store.plan_and_state(session_id)) == saved


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
            state=state_at(n + 1, fired=[f"check:{n}"]),
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

    # Every stored column is in the export (a new column must be exported too), but for the
    # progress columns: they are in the state, which is exported whole.
    progress_columns = {"active", "started", "fired"}
    session_columns = set(SessionRow.__table__.columns.keys()) - {"owner"} - progress_columns
    event_columns = set(FeedbackRow.__table__.columns.keys()) - {"id", "session_id"}
    for session in sessions:
        assert session_columns <= set(session)
        assert not progress_columns & set(session)
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
    assert sessions[1]["state"] == state_at(3, fired=["check:2"])
    assert sessions[0]["state"] == engine_state()
    assert [e["kind"] for e in sessions[1]["feedback"]] == ["good", "softer", "firmer"]
    assert "answers" not in json.dumps(exported)


def test_forget_deletes_everything_of_this_owner_only(
    store: SessionStore, other: SessionStore, new_session: Make, counts: Counts
) -> None:
    mine = [new_session(), new_session()]
    for session_id in mine:
        store.add_feedback(
            session_id, event=TENDER, seq=1, seconds_done=1, state=state_at(1), tender=[]
        )
    theirs = new_session(into=other)
    other.add_feedback(theirs, event=TENDER, seq=1, seconds_done=1, state=state_at(1), tender=[])

    assert store.forget() == 2
    assert counts("local") == (0, 0)
    assert counts() == (1, 1)
    assert store.sessions() == []
    assert store.export()["sessions"] == []
    assert other.get(theirs).feedback == (TENDER,)
    assert store.forget() == 0


# Each with words of the sentence that refuses it: refused for that reason, not another.
BAD_CREATE: list[tuple[str, object, str]] = [
    ("tension_before", 11, "Tension before must be"),
    ("tension_before", -1, "Tension before must be"),
    ("tension_before", True, "Tension before must be"),
    ("tension_before", "5", "Tension before must be"),
    ("mode", "both", "The mode must be"),
    ("minutes_planned", 0, "The minutes planned must be"),
    ("verdict", "stop", "stop verdict"),
    ("verdict", "maybe", "The verdict must be"),
    ("verdict_conditions", "sunburn", "conditions must be a list"),
    ("focus", [Focus("upper-back", 11)], "The tension of upper-back"),
    ("focus", [("upper-back",)], "Each focus must be"),
    ("started_at", datetime(2025, 3, 1), "time zone"),  # noqa: DTZ001 (naive on purpose)
    ("plan", {"steps": {1, 2}}, "plain JSON data"),
    ("plan", {"x": math.nan}, "plain JSON data"),
    ("state", {**engine_state(), 1: "int key"}, "key that is not text"),  # type: ignore[misc]
    ("state", ["not", "a", "dict"], "dictionary"),
    ("state", engine_state(when=datetime(2025, 3, 1, tzinfo=UTC)), "plain JSON data"),
    ("state", engine_state(seq=2**70), "plain JSON data"),
    ("plan", {"steps": [{"x": -math.inf}]}, "plain JSON data"),
]


@pytest.mark.parametrize(("field", "bad", "words"), BAD_CREATE)
def test_bad_values_are_refused_and_nothing_is_written(
    store: SessionStore, values: Values, counts: Counts, field: str, bad: object, words: str
) -> None:
    with pytest.raises(StoreError) as caught:
        store.create(**values(**{field: bad}))
    message = caught.value.message
    assert words in message
    assert message.endswith(".")
    assert message[0].isupper()
    assert "\n" not in message
    assert counts() == (0, 0)


BAD_UPDATES: list[tuple[str, dict[str, Any], str]] = [
    ("save_progress", {"seq": 2, "seconds_done": -1, "state": state_at(2)}, "Seconds done"),
    ("save_progress", {"seq": -1, "seconds_done": 1, "state": state_at(2)}, "sequence number"),
    (
        "save_progress",
        {"seq": 2, "seconds_done": 1, "state": state_at(2, x=math.inf)},
        "plain JSON data",
    ),
    (
        "add_feedback",
        {
            "event": FeedbackEvent("harder", 1.0, 0, "x"),  # type: ignore[arg-type]
            "seq": 2,
            "seconds_done": 1,
            "state": state_at(2),
            "tender": [],
        },
        "feedback kind",
    ),
    (
        "add_feedback",
        {
            "event": FeedbackEvent("good", -1.0, 0, "x"),
            "seq": 2,
            "seconds_done": 1,
            "state": state_at(2),
            "tender": [],
        },
        "feedback time",
    ),
    (
        "add_feedback",
        {"event": TENDER, "seq": 2, "seconds_done": 1, "state": state_at(2), "tender": [""]},
        "tender regions",
    ),
    (
        "finish",
        {
            "status": "active",
            "seconds_done": 1,
            "tension_after": 1,
            "note": None,
            "ended_at": datetime(2025, 3, 2, tzinfo=UTC),
        },
        "The final status",
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
        "Tension after",
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
        "Seconds done",
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
        "The note must be",
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
        "must not be before",
    ),
]


@pytest.mark.parametrize(("method", "kwargs", "words"), BAD_UPDATES)
def test_bad_updates_leave_the_session_as_it_was(
    store: SessionStore, new_session: Make, method: str, kwargs: dict[str, Any], words: str
) -> None:
    session_id = new_session()
    store.save_progress(session_id, seq=1, seconds_done=10, state=state_at(1, kept=True))
    before = (store.get(session_id), store.plan_and_state(session_id))
    with pytest.raises(StoreError, match=words):
        getattr(store, method)(session_id, **kwargs)
    assert (store.get(session_id), store.plan_and_state(session_id)) == before


def test_an_owner_must_be_named(store: SessionStore) -> None:
    with pytest.raises(StoreError, match="owner"):
        SessionStore(store.engine, owner=" ")


def test_stored_rows_are_plain_values(store: SessionStore, new_session: Make) -> None:
    """JSON columns hold JSON, times hold UTC: what another tool reading the file would see."""
    session_id = new_session()
    store.save_progress(
        session_id, seq=3, seconds_done=75, state=state_at(3, active=75.5, fired=["check:0"])
    )
    with store.engine.connect() as conn:
        row = conn.execute(
            select(
                SessionRow.focus,
                SessionRow.tender,
                SessionRow.state,
                SessionRow.active,
                SessionRow.started,
                SessionRow.fired,
            ).where(SessionRow.id == session_id)
        ).one()
    assert row.focus == [
        {"region": "upper-back", "tension": 8},
        {"region": "lower-back", "tension": 5},
    ]
    assert row.tender == []
    # The state in its two parts: the document, and the progress in columns of its own.
    assert row.state == document(state_at(3))
    assert (row.active, row.started, row.fired) == (75.5, True, ["check:0"])


# ---- the progress every state must hold ------------------------------------------------------


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in state_at(2).items() if k != name}


# A state the store must refuse, and words of the sentence that refuses it.
BAD_PROGRESS: dict[str, tuple[dict[str, Any], str]] = {
    "no-active": (without("active"), "no 'active'"),
    "no-started": (without("started"), "no 'started'"),
    "no-fired": (without("fired"), "no 'fired'"),
    "negative-active": (state_at(2) | {"active": -0.5}, "active time"),
    "nan-active": (state_at(2) | {"active": math.nan}, "nan"),
    "infinite-active": (state_at(2) | {"active": math.inf}, "inf"),
    "active-past-a-week": (state_at(2) | {"active": 86400.0 * 7 + 1}, "active time"),
    "active-as-text": (state_at(2) | {"active": "12"}, "active time"),
    "active-as-bool": (state_at(2) | {"active": True}, "active time"),
    "started-as-number": (state_at(2) | {"started": 1}, "true or false"),
    "started-as-null": (state_at(2) | {"started": None}, "true or false"),
    "fired-as-text": (state_at(2) | {"fired": "check:0"}, "cues given"),
    "fired-holds-a-number": (state_at(2) | {"fired": [1]}, "cues given"),
    "fired-empty-id": (state_at(2) | {"fired": [""]}, "cues given"),
    "fired-long-id": (state_at(2) | {"fired": ["x" * 101]}, "cues given"),
}
RECORDED = ("active", "anchor", "started", "fired", "seq")


def making(state: dict[str, Any], changed: Sequence[str] | None) -> Callable[..., Change]:
    """An event's change that makes `state`, naming `changed` as what it changed."""
    return lambda _saved: Change(20, state, changed=changed)


def refused_in_one_sentence(call: Callable[[], object], words: str) -> None:
    with pytest.raises(StoreError) as caught:
        call()
    message = caught.value.message
    assert words in message
    assert one_sentence(message), message


@pytest.mark.parametrize(("state", "words"), BAD_PROGRESS.values(), ids=list(BAD_PROGRESS))
def test_a_state_without_sound_progress_is_refused_and_nothing_is_written(
    store: SessionStore,
    values: Values,
    new_session: Make,
    counts: Counts,
    state: dict[str, Any],
    words: str,
) -> None:
    refused_in_one_sentence(lambda: store.create(**values(state=state)), words)
    assert counts() == (0, 0)

    session_id = new_session()
    store.save_progress(session_id, seq=1, seconds_done=10, state=state_at(1, fired=["step:0"]))

    def stored() -> tuple[Any, ...]:
        with store.engine.connect() as conn:
            row = conn.execute(select(SessionRow).where(SessionRow.id == session_id)).one()
        return (row, store.get(session_id), store.plan_and_state(session_id))

    before = stored()
    refused_in_one_sentence(
        lambda: store.save_progress(session_id, seq=2, seconds_done=20, state=state), words
    )
    refused_in_one_sentence(
        lambda: store.add_feedback(
            session_id,
            event=TENDER,
            seq=2,
            seconds_done=20,
            state=state,
            tender=["upper-back"],
        ),
        words,
    )
    # An event's change: whether it names all it changed, only the `seq`, or the progress.
    ways: list[tuple[str, ...] | None] = [None, ("seq",)]
    if set(RECORDED) <= set(state):
        ways.append(RECORDED)
    for changed in ways:
        advance = partial(
            store.advance, session_id, seq=2, change=making(state, changed), full=False
        )
        refused_in_one_sentence(advance, words)
    assert stored() == before
    assert counts() == (1, 0)
    # The seq was not used up: the next sound save is taken.
    assert store.save_progress(session_id, seq=2, seconds_done=20, state=state_at(2))


@pytest.mark.parametrize("name", ["active", "started", "fired"])
def test_a_change_naming_progress_its_state_lacks_is_refused_in_one_sentence(
    store: SessionStore, new_session: Make, name: str
) -> None:
    session_id = new_session()
    refused_in_one_sentence(
        lambda: store.advance(
            session_id,
            seq=1,
            change=making(without(name), RECORDED),
            full=False,
        ),
        f"no {name!r}",
    )
