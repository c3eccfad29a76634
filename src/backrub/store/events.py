"""One of the player's events, saved in one transaction: read the session's saved state (its row
locked), let the caller's `change` make the new state, write it and the feedback heard.

The seq rule keeps a late or repeated send from moving a session backwards: an event whose `seq`
is not above the saved one, or one for a session that has ended, changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import insert, select, update

from backrub.core.models import FeedbackEvent, Focus, SessionRecord
from backrub.store import saved_state
from backrub.store import validation as check
from backrub.store.engine import transaction
from backrub.store.errors import NoSuchSession, StoreError
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection, Engine, Row

    from backrub.core.models import FeedbackKind, Mode, SessionStatus, VerdictLevel


class Change(NamedTuple):
    """What one event makes of a session's saved state."""

    seconds_done: int
    state: dict[str, Any]
    # What the receiver said, if the event was feedback, and the tender regions it led to.
    feedback: FeedbackEvent | None = None
    tender: Sequence[str] | None = None
    # The top-level fields of `state` that differ from the saved one, when the caller knows:
    # only they are checked (the rest was checked when it was saved). None: check all of it.
    changed: Sequence[str] | None = None


class Advanced(NamedTuple):
    """What an event did: the state now saved (the new one, or the one kept)."""

    accepted: bool
    state: dict[str, Any]
    # Read in the same transaction when asked for, and always when the change was refused.
    record: SessionRecord | None = None


# A session's state, in the columns that keep it (see `joined`).
STATE_COLUMNS = (
    SessionRow.state,
    SessionRow.active,
    SessionRow.started,
    SessionRow.fired,
    SessionRow.progress_seq,
)
# What a SessionRecord needs (the store reads the plan and state only when asked for them).
RECORD_COLUMNS = (
    SessionRow.id,
    SessionRow.started_at,
    SessionRow.mode,
    SessionRow.minutes_planned,
    SessionRow.seconds_done,
    SessionRow.status,
    SessionRow.focus,
    SessionRow.verdict,
    SessionRow.verdict_conditions,
    SessionRow.tension_before,
    SessionRow.tension_after,
    SessionRow.note,
    SessionRow.tender,
    SessionRow.ended_at,
)
_FEEDBACK = select(
    FeedbackRow.session_id, FeedbackRow.kind, FeedbackRow.at, FeedbackRow.step, FeedbackRow.region
).order_by(FeedbackRow.session_id, FeedbackRow.at, FeedbackRow.id)


def advance(
    engine: Engine,
    *,
    owner: str,
    session_id: str,
    seq: int,
    change: Callable[[dict[str, Any]], Change],
    full: bool,
) -> Advanced:
    """Apply one event in one write transaction; with `full`, read the record afterwards.

    When the session has ended or `seq` is not above the saved one, `change` is not called and
    nothing is written (accepted False, the record read). A session that is not `owner`'s is
    `NoSuchSession`. The row stays locked from the read to the write (PostgreSQL's FOR UPDATE;
    SQLite's write transaction holds the database), so no other save comes between.
    """
    seq = check.whole("The save's sequence number", seq, 0)
    with transaction(engine, write=True) as conn:
        row = conn.execute(
            select(SessionRow.status, SessionRow.tender, *STATE_COLUMNS)
            .where(SessionRow.id == session_id, SessionRow.owner == owner)
            .with_for_update()
        ).first()
        if row is None:
            raise NoSuchSession(session_id)
        saved = joined(row, row.state)
        if row.status != "active" or seq <= row.progress_seq:
            return Advanced(False, saved, read_record(conn, session_id))
        new = change(saved)
        conn.execute(
            update(SessionRow)
            .where(SessionRow.id == session_id)
            .values(_columns(new, seq=seq, tender=row.tender))
        )
        if new.feedback is not None:
            conn.execute(
                insert(FeedbackRow), {"session_id": session_id, **check.feedback(new.feedback)}
            )
        record = read_record(conn, session_id) if full else None
    return Advanced(True, new.state, record)


def _columns(new: Change, *, seq: int, tender: list[str]) -> dict[str, Any]:
    """What an accepted event writes: the progress, and the state's document only when the
    event changed more than that (store/saved_state.py)."""
    state = new.state
    if new.changed is None:
        check.plain_data("session state", state)
    else:
        missing = [k for k in new.changed if k not in state]
        if missing:
            raise StoreError(f"The session state has no {missing[0]!r}; nothing was saved.")
        check.plain_data("session state", {k: state[k] for k in new.changed})
    values: dict[str, Any] = {
        "progress_seq": seq,
        "seconds_done": check.whole("Seconds done", new.seconds_done, 0),
        "tender": tender if new.tender is None else check.ids("The tender regions", new.tender),
        **saved_state.progress(state)._asdict(),
        "updated_at": datetime.now(UTC),
    }
    if new.changed is None or not saved_state.PROGRESS.issuperset(new.changed):
        values["state"] = saved_state.document(state)
    return values


def joined(row: Row[Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The state as the store's callers see it, from a row with `STATE_COLUMNS` but its
    document, and that document."""
    return saved_state.join(doc, row.active, row.started, row.fired, row.progress_seq)


def read_record(conn: Connection, session_id: str) -> SessionRecord:
    row = conn.execute(select(*RECORD_COLUMNS).where(SessionRow.id == session_id)).one()
    events = feedback_of(conn, FeedbackRow.session_id == session_id)
    return record_of(row, events.get(session_id, ()))


def feedback_of(conn: Connection, where: Any) -> dict[str, tuple[FeedbackEvent, ...]]:
    """The feedback events `where` selects, by session, in the order they were heard."""
    grouped: dict[str, list[FeedbackEvent]] = {}
    for r in conn.execute(_FEEDBACK.where(where)):
        event = FeedbackEvent(cast("FeedbackKind", r.kind), r.at, r.step, r.region)
        grouped.setdefault(r.session_id, []).append(event)
    return {k: tuple(v) for k, v in grouped.items()}


def record_of(row: Row[Any], feedback: tuple[FeedbackEvent, ...]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        started_at=row.started_at,
        mode=cast("Mode", row.mode),
        minutes_planned=row.minutes_planned,
        seconds_done=row.seconds_done,
        status=cast("SessionStatus", row.status),
        focus=tuple(Focus(f["region"], f["tension"]) for f in row.focus),
        verdict=cast("VerdictLevel", row.verdict),
        verdict_conditions=tuple(row.verdict_conditions),
        tension_before=row.tension_before,
        tension_after=row.tension_after,
        note=row.note,
        tender=tuple(row.tender),
        feedback=feedback,
        ended_at=row.ended_at,
    )
