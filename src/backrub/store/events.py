"""The player's events, saved many to a transaction (group commit).

A player sends an event at every step, every 15 s and at every feedback, so a server with many
people playing at once is mostly saving events. Each event is still judged on its own — the seq
rule, the owner, its own change — but a batch of them shares one transaction: one read of the
saved states, one write of the new ones, one commit (the part of a save that costs the most on
either backend). `SessionStore.advance` is a batch of one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import bindparam, select

from backrub.core.errors import BackrubError
from backrub.core.models import FeedbackEvent, Focus, SessionRecord
from backrub.store import event_sql, saved_state
from backrub.store import validation as check
from backrub.store.engine import ASYNC_COMMIT, writing
from backrub.store.errors import NoSuchSession, StoreError
from backrub.store.tables import FeedbackRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from sqlalchemy import BindParameter, Connection, Engine, Row

    from backrub.core.models import FeedbackKind, Mode, SessionStatus, VerdictLevel
    from backrub.store.engine import Held


class Change(NamedTuple):
    """What one event makes of a session's saved state (see `advance_all`)."""

    seconds_done: int
    state: dict[str, Any]
    # What the receiver said, if the event was feedback, and the tender regions it led to.
    feedback: FeedbackEvent | None = None
    tender: Sequence[str] | None = None
    # The top-level fields of `state` that differ from the saved one, when the caller knows:
    # only they are checked (the rest was checked when it was saved). None: check all of it.
    # A list the change only extended with its `feedback` event (checked on its own, as it is
    # stored) need not be named.
    changed: Sequence[str] | None = None
    # True: `state` is the engine's own snapshot (`engine.state_as_dict`), plain JSON data by
    # construction (tests/core check it), so the changed fields are not checked again: the
    # check was a twelfth of a feedback's save. The progress columns are checked all the same.
    plain: bool = False


class Advanced(NamedTuple):
    """What an event did: the state now saved (the new one, or the one kept)."""

    accepted: bool
    state: dict[str, Any]
    # Read in the same transaction when asked for, and always when the change was refused.
    record: SessionRecord | None = None


class Advance(NamedTuple):
    """One event to save: whose, which session, its `seq`, and what it changes."""

    owner: str
    session_id: str
    seq: int
    change: Callable[[dict[str, Any]], Change]
    # True: answer with the record too, even when the change is accepted.
    full: bool


# Built once, not per call: building a statement costs more Python than running it.
_IDS: BindParameter[list[str]] = bindparam("b_ids", expanding=True)
_FEEDBACK = select(
    FeedbackRow.session_id, FeedbackRow.kind, FeedbackRow.at, FeedbackRow.step, FeedbackRow.region
).order_by(FeedbackRow.session_id, FeedbackRow.at, FeedbackRow.id)
_FEEDBACK_OF = _FEEDBACK.where(FeedbackRow.session_id.in_(_IDS))
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
_RECORDS = select(*RECORD_COLUMNS).where(SessionRow.id.in_(_IDS))


class StateCache:
    """The state this process last saved for each session, with its `seq` and the time of that
    save, so that a batch need not read and decode it again: a session's state is a JSON
    document of several KB, and decoding it was a tenth of a feedback's cost.

    Trusted only for an active session whose row still has the `seq` and the time of that save:
    a save by anyone else (another process, the CLI) raises the seq and sets the time, and even
    where a seq can go back — a restore, or a database server that lost its last commits — the
    time of a save is not made again. Used by one thread (the event writer); the oldest entries
    go first. The states are shared, never changed in place.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._kept: dict[str, tuple[tuple[int, datetime], dict[str, Any]]] = {}

    def get(self, session_id: str, seq: int, saved_at: datetime) -> dict[str, Any] | None:
        kept = self._kept.get(session_id)
        return kept[1] if kept is not None and kept[0] == (seq, saved_at) else None

    def keep(self, session_id: str, seq: int, saved_at: datetime, state: dict[str, Any]) -> None:
        self._kept.pop(session_id, None)
        self._kept[session_id] = ((seq, saved_at), state)
        if len(self._kept) > self._size:
            del self._kept[next(iter(self._kept))]


def joined(row: Row[Any] | event_sql.SavedRow, doc: dict[str, Any]) -> dict[str, Any]:
    """The state as the store's callers see it, from a row with `STATE_COLUMNS` but its
    document, and that document."""
    return saved_state.join(doc, row.active, row.started, row.fired, row.progress_seq)


class _Saved:
    """A session's row as the batch has left it so far."""

    __slots__ = (
        "done",
        "new_doc",
        "owner",
        "progress",
        "saved_at",
        "seq",
        "state",
        "status",
        "tender",
    )

    def __init__(self, row: event_sql.SavedRow, state: dict[str, Any] | None) -> None:
        if state is None:  # gone between the two reads: cannot be, the transaction holds it
            raise NoSuchSession(row.id)
        self.owner: str = row.owner
        self.status: str = row.status
        self.seq: int = row.progress_seq
        self.done: int = row.seconds_done
        self.state: dict[str, Any] = state
        self.tender: list[str] = row.tender
        self.saved_at: datetime = row.updated_at
        # True once an event changed more than the progress: the document is written too.
        self.new_doc = False
        # The progress the last event left, checked (None until one is applied).
        self.progress: saved_state.Progress | None = None


def advance_all(
    db: Engine | Held, items: Sequence[Advance], cache: StateCache | None = None
) -> list[Advanced | BackrubError]:
    """Apply the events in order, in one write transaction; for each, what it did or why not.

    For each event, as if it were saved alone: when the session has ended or `seq` is not above
    the saved one (including the batch's earlier events), `change` is not called and nothing is
    written (accepted False, the record read); an event for a session that is not the
    owner's is `NoSuchSession`; a change that raises leaves its session as it was. A refused or
    failed event does not hold back the others. A failure of the database itself (`StoreError`)
    raises: then nothing in the batch was saved.

    A full answer's record is read after the whole batch is written: when two events of one
    session share a batch, the first's record already shows the second (its state does not).
    `cache`: the states saved before by this process (see `StateCache`), kept up to date.
    """
    ids = sorted({item.session_id for item in items})
    results: list[Advanced | BackrubError] = []
    with writing(db) as conn:
        if conn.dialect.name == "postgresql" and not conn.get_execution_options().get(ASYNC_COMMIT):
            # Waiting for the disk made the server sit idle under load. Off for these saves
            # only: what SQLite's WAL mode promises (store/engine.py) — a crash of the
            # database server may lose the last fraction of a second, never corrupt anything.
            # (The event writer's own connection has it off already: `writer_engine`.)
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        saved = _read(conn, ids, cache)
        written: set[str] = set()
        heard: list[tuple[str, FeedbackEvent]] = []
        for item in items:
            try:
                results.append(_apply(item, saved.get(item.session_id), written, heard))
            except BackrubError as exc:
                results.append(exc)
        if written:
            now = datetime.now(UTC)
            for sid in written:
                saved[sid].saved_at = now
            event_sql.write(conn, [_columns(sid, saved[sid]) for sid in sorted(written)])
        if heard:
            _keep_feedback(conn, heard)
        asked = sorted(
            {
                item.session_id
                for item, result in zip(items, results, strict=True)
                if isinstance(result, Advanced) and (item.full or not result.accepted)
            }
        )
        if asked:
            _add_records(conn, items, results, asked)
    # Only once committed: a batch rolled back leaves the cache as the database is.
    if cache is not None:
        for sid in written:
            cache.keep(sid, saved[sid].seq, saved[sid].saved_at, saved[sid].state)
    return results


def _read(conn: Connection, ids: Sequence[str], cache: StateCache | None) -> dict[str, _Saved]:
    """The sessions' rows (locked on PostgreSQL), their states from the cache where it is sure
    to have them, else from the database."""
    rows = event_sql.read_rows(conn, ids)
    states: dict[str, dict[str, Any] | None] = {
        row.id: cache.get(row.id, row.progress_seq, row.updated_at)
        if cache is not None and row.status == "active"
        else None
        for row in rows
    }
    unknown = [sid for sid, state in states.items() if state is None]
    if unknown:
        docs = event_sql.read_documents(conn, unknown)
        states.update((row.id, joined(row, docs[row.id])) for row in rows if row.id in docs)
    return {row.id: _Saved(row, states[row.id]) for row in rows}


def _add_records(
    conn: Connection,
    items: Sequence[Advance],
    results: list[Advanced | BackrubError],
    asked: Sequence[str],
) -> None:
    """Put each asked-for session's record in its results. Inside the transaction: should this
    fail, nothing of the batch is saved, so each event may be sent again as it was."""
    found = {row.id: row for row in conn.execute(_RECORDS, {"b_ids": asked})}
    events = feedback_of(conn, ids=asked)
    for n, (item, result) in enumerate(zip(items, results, strict=True)):
        if isinstance(result, Advanced) and item.session_id in found:
            record = record_of(found[item.session_id], events.get(item.session_id, ()))
            results[n] = result._replace(record=record)


def _apply(
    item: Advance,
    row: _Saved | None,
    written: set[str],
    heard: list[tuple[str, FeedbackEvent]],
) -> Advanced:
    seq = check.whole("The save's sequence number", item.seq, 0)
    if row is None or row.owner != item.owner:
        raise NoSuchSession(item.session_id)
    if row.status != "active" or seq <= row.seq:
        return Advanced(accepted=False, state=row.state)
    new = item.change(row.state)
    state = new.state
    if new.changed is None:
        check.plain_data("session state", state)
    else:
        missing = [k for k in new.changed if k not in state]
        if missing:
            raise StoreError(f"The session state has no {missing[0]!r}; nothing was saved.")
        if not new.plain:
            check.plain_data("session state", {k: state[k] for k in new.changed})
    # Checked here, not when the batch is written: a bad event must not hold back the others.
    progress = saved_state.progress(state)
    done = check.whole("Seconds done", new.seconds_done, 0)
    tender = row.tender if new.tender is None else check.ids("The tender regions", new.tender)
    if new.feedback is not None:
        check.feedback(new.feedback)
        heard.append((item.session_id, new.feedback))
    row.seq, row.done, row.state, row.tender, row.progress = seq, done, state, tender, progress
    if new.changed is None or not saved_state.PROGRESS.issuperset(new.changed):
        row.new_doc = True
    written.add(item.session_id)
    return Advanced(accepted=True, state=state)


def _columns(session_id: str, row: _Saved) -> event_sql.Progress:
    """What the batch writes for one session: where its events have left it — the progress,
    and the state's document only when an event changed more than that."""
    active, started, fired = row.progress or saved_state.progress(row.state)
    doc = saved_state.document(row.state) if row.new_doc else None
    return event_sql.Progress(
        session_id,
        row.owner,
        row.seq,
        row.done,
        active,
        started,
        fired,
        row.tender,
        row.saved_at,
        doc,
    )


def _keep_feedback(conn: Connection, heard: Iterable[tuple[str, FeedbackEvent]]) -> None:
    """Store what the receivers said: a row for each event applied, in one statement. The same
    words at the same moment twice (tapped twice while paused) are two events, each of which
    re-planned the rest; an event sent again never gets here (the `seq` rule refuses it)."""
    event_sql.insert_feedback(conn, [{"session_id": sid, **check.feedback(e)} for sid, e in heard])


def feedback_of(
    conn: Connection, where: Any = None, *, ids: Sequence[str] = ()
) -> dict[str, tuple[FeedbackEvent, ...]]:
    """The feedback events `where` selects (or those of the sessions `ids`), by session, in
    the order they were heard."""
    grouped: dict[str, list[FeedbackEvent]] = {}
    rows = (
        conn.execute(_FEEDBACK.where(where))
        if where is not None
        else conn.execute(_FEEDBACK_OF, {"b_ids": list(ids)})
    )
    for r in rows:
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
