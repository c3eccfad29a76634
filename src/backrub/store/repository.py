"""Session history: the only code that reads and writes the tables. It returns core types.

Every method is one transaction and every query is scoped to the store's owner, so one user can
never read, export or delete another's sessions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, insert, select, update

from backrub.store import saved_state
from backrub.store import validation as check
from backrub.store.engine import make_engine, transaction
from backrub.store.errors import NoSuchSession, StoreError
from backrub.store.events import (
    RECORD_COLUMNS,
    STATE_COLUMNS,
    Advanced,
    Change,
    advance,
    feedback_of,
    joined,
    record_of,
)
from backrub.store.migration import SCHEMA_HEAD, migrate
from backrub.store.tables import FeedbackRow, RemoteMessageRow, RemoteRow, SessionRow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection, Engine

    from backrub.config import Settings
    from backrub.core.models import FeedbackEvent, Focus, SessionRecord

EXPORT_FORMAT = {"name": "backrub-export", "version": 1}


def open_store(settings: Settings, owner: str = "local") -> SessionStore:
    """The store for `settings`' database, upgraded to this code's schema if it is behind."""
    engine = make_engine(settings)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return SessionStore(engine, owner)


def _now() -> datetime:
    return datetime.now(UTC)


def delete_sessions(conn: Connection, which: Any) -> int:
    """Delete the sessions `which` selects and every row that refers to them; how many sessions.
    Explicit, not only ON DELETE CASCADE: it must hold even where foreign keys are off."""
    ids = select(SessionRow.id).where(which).scalar_subquery()
    for child in (FeedbackRow, RemoteMessageRow, RemoteRow):
        conn.execute(delete(child).where(child.session_id.in_(ids)))
    return int(conn.execute(delete(SessionRow).where(which)).rowcount)


class SessionStore:
    def __init__(self, engine: Engine, owner: str = "local") -> None:
        self.engine = engine
        self.owner = check.owner(owner)

    def close(self) -> None:
        """Close the engine's pooled connections (the store may still be used afterwards)."""
        self.engine.dispose()

    # ---- writing ------------------------------------------------------------------------

    def create(
        self,
        *,
        started_at: datetime,
        mode: str,
        minutes_planned: int,
        focus: Sequence[Focus],
        verdict: str,
        verdict_conditions: Sequence[str],
        tension_before: int | None,
        plan: dict[str, Any],
        state: dict[str, Any],
    ) -> str:
        """Save a new, active session and return its id."""
        if verdict == "stop":
            raise StoreError("A session cannot start on a stop verdict; nothing was saved.")
        values = {
            "id": uuid.uuid4().hex,
            "owner": self.owner,
            "started_at": check.moment("The start time", started_at),
            "ended_at": None,
            "status": "active",
            "mode": check.mode(mode),
            "minutes_planned": check.whole("The minutes planned", minutes_planned, 1),
            "seconds_done": 0,
            "progress_seq": 0,
            "focus": check.focus(focus),
            "verdict": check.one_of("The verdict", verdict, check.VERDICTS),
            "verdict_conditions": check.ids("The verdict's conditions", verdict_conditions),
            "tension_before": check.tension("Tension before", tension_before),
            "tension_after": None,
            "note": None,
            "tender": [],
            "plan": check.plain_data("plan", plan),
            **self._state_columns(state),
            "updated_at": _now(),
        }
        with transaction(self.engine, write=True) as conn:
            conn.execute(insert(SessionRow), values)
        return cast("str", values["id"])

    def save_progress(
        self, session_id: str, *, seq: int, seconds_done: int, state: dict[str, Any]
    ) -> bool:
        """Record progress if `seq` is newer than the stored one; False when it was ignored.

        A late or duplicated save never moves progress backwards, and a session that has ended
        keeps what `finish` stored.
        """
        values = self._progress(seq=seq, seconds_done=seconds_done, state=state)
        with transaction(self.engine, write=True) as conn:
            # One conditional UPDATE: atomic on both backends, whoever else is writing.
            result = conn.execute(
                update(SessionRow)
                .where(
                    self._mine(session_id),
                    SessionRow.status == "active",
                    SessionRow.progress_seq < values["progress_seq"],
                )
                .values(values)
            )
            if result.rowcount == 1:
                return True
            self._lock(conn, session_id)
            return False

    def add_feedback(
        self,
        session_id: str,
        *,
        event: FeedbackEvent,
        seq: int,
        seconds_done: int,
        state: dict[str, Any],
        tender: Sequence[str],
    ) -> None:
        """Record what the receiver said, with the progress and tender regions it led to.

        All or nothing, in one transaction. The event is always kept (a late one too: it was
        heard); the progress and tender regions follow the same `seq` rule as `save_progress`.
        """
        row = check.feedback(event)
        values = self._progress(seq=seq, seconds_done=seconds_done, state=state)
        values["tender"] = check.ids("The tender regions", tender)
        with transaction(self.engine, write=True) as conn:
            status, stored_seq, _ = self._lock(conn, session_id)
            if status != "active":
                raise StoreError(
                    f"Session {session_id!r} has ended, so feedback can no longer be added to it."
                )
            conn.execute(insert(FeedbackRow), {"session_id": session_id, **row})
            if values["progress_seq"] > stored_seq:
                conn.execute(update(SessionRow).where(self._mine(session_id)).values(values))

    def advance(
        self,
        session_id: str,
        *,
        seq: int,
        change: Callable[[dict[str, Any]], Change],
        full: bool,
    ) -> Advanced:
        """One of the player's events, in one write transaction (store/events.py)."""
        return advance(
            self.engine, owner=self.owner, session_id=session_id, seq=seq, change=change, full=full
        )

    def finish(
        self,
        session_id: str,
        *,
        status: str,
        seconds_done: int,
        tension_after: int | None,
        note: str | None,
        ended_at: datetime,
    ) -> None:
        """End an active session as "finished" or "stopped" (stopped early, still kept)."""
        values = {
            "status": check.one_of("The final status", status, check.END_STATUSES),
            "seconds_done": check.whole("Seconds done", seconds_done, 0),
            "tension_after": check.tension("Tension after", tension_after),
            "note": check.note(note),
            "ended_at": check.moment("The end time", ended_at),
            "updated_at": _now(),
        }
        with transaction(self.engine, write=True) as conn:
            current, _, started_at = self._lock(conn, session_id)
            if current != "active":
                raise StoreError(f"Session {session_id!r} has already ended; it stays as saved.")
            if ended_at < started_at:
                raise StoreError(
                    "The end time must not be before the session started "
                    f"({started_at.isoformat(timespec='seconds')})."
                )
            conn.execute(update(SessionRow).where(self._mine(session_id)).values(values))

    def forget(self) -> int:
        """Delete every session of this owner, with all that hangs on it; how many sessions."""
        with transaction(self.engine, write=True) as conn:
            return delete_sessions(conn, SessionRow.owner == self.owner)

    def delete(self, session_id: str) -> None:
        """Delete one session of this owner, with all that hangs on it (NoSuchSession
        otherwise)."""
        with transaction(self.engine, write=True) as conn:
            self._lock(conn, session_id)
            delete_sessions(conn, self._mine(session_id))

    # ---- reading ------------------------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord:
        with transaction(self.engine, write=False) as conn:
            row = conn.execute(select(*RECORD_COLUMNS).where(self._mine(session_id))).first()
            if row is None:
                raise NoSuchSession(session_id)
            events = feedback_of(conn, FeedbackRow.session_id == session_id)
        return record_of(row, events.get(session_id, ()))

    def plan_and_state(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        with transaction(self.engine, write=False) as conn:
            row = conn.execute(
                select(SessionRow.plan, *STATE_COLUMNS).where(self._mine(session_id))
            ).first()
        if row is None:
            raise NoSuchSession(session_id)
        return row.plan, joined(row, row.state)

    def latest_unfinished(self) -> str | None:
        """The newest session of this owner that is still active, to offer resuming it."""
        with transaction(self.engine, write=False) as conn:
            return conn.execute(
                select(SessionRow.id)
                .where(SessionRow.owner == self.owner, SessionRow.status == "active")
                .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
                .limit(1)
            ).scalar()

    def sessions(
        self, *, newest_first: bool = True, limit: int | None = None
    ) -> list[SessionRecord]:
        """This owner's sessions with their feedback, by start time."""
        if limit is not None:
            check.whole("The limit", limit, 0)
        order = (
            (SessionRow.started_at.desc(), SessionRow.id.desc())
            if newest_first
            else (SessionRow.started_at, SessionRow.id)
        )
        query = select(*RECORD_COLUMNS).where(SessionRow.owner == self.owner).order_by(*order)
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(query.limit(limit)).all()
            if not rows:
                return []
            ids = (
                self._ids()
                if limit is None
                else select(SessionRow.id)
                .where(SessionRow.owner == self.owner)
                .order_by(*order)
                .limit(limit)
                .scalar_subquery()
            )
            events = feedback_of(conn, FeedbackRow.session_id.in_(ids))
        return [record_of(row, events.get(row.id, ())) for row in rows]

    def export(self) -> dict[str, Any]:
        """Everything stored for this owner, as JSON-ready data (times in ISO 8601, UTC)."""
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(
                select(SessionRow)
                .where(SessionRow.owner == self.owner)
                .order_by(SessionRow.started_at, SessionRow.id)
            ).all()
            events = feedback_of(conn, FeedbackRow.session_id.in_(self._ids()))
            remotes = self._by_session(
                conn,
                select(
                    RemoteRow.session_id,
                    RemoteRow.code,
                    RemoteRow.created_at,
                    RemoteRow.expires_at,
                ).where(RemoteRow.session_id.in_(self._ids())),
            )
            said = self._by_session(
                conn,
                select(RemoteMessageRow.session_id, RemoteMessageRow.kind, RemoteMessageRow.sent_at)
                .where(RemoteMessageRow.session_id.in_(self._ids()))
                .order_by(RemoteMessageRow.id),
            )
        sessions = []
        for row in rows:
            # The state whole, as the store's callers see it (not its columns).
            parts = ("owner", *saved_state.Progress._fields)
            data = {k: v for k, v in row._asdict().items() if k not in parts}
            data["state"] = joined(row, row.state)
            for key in ("started_at", "ended_at", "updated_at"):
                data[key] = data[key].isoformat() if data[key] is not None else None
            data["feedback"] = [e._asdict() for e in events.get(row.id, ())]
            # The receiver's remote: its codes, and what the receiver sent through them.
            data["remotes"] = remotes.get(row.id, [])
            data["remote_messages"] = said.get(row.id, [])
            sessions.append(data)
        return {
            "format": dict(EXPORT_FORMAT),
            "schema": SCHEMA_HEAD,
            "owner": self.owner,
            "exported_at": _now().isoformat(),
            "sessions": sessions,
        }

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _by_session(conn: Connection, query: Any) -> dict[str, list[dict[str, Any]]]:
        """Rows whose first column is a session id → plain dicts per session, times as text."""
        found: dict[str, list[dict[str, Any]]] = {}
        for row in conn.execute(query).mappings():
            item = {
                k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in row.items()
                if k != "session_id"
            }
            found.setdefault(str(row["session_id"]), []).append(item)
        return found

    def _mine(self, session_id: str) -> Any:
        return (SessionRow.id == session_id) & (SessionRow.owner == self.owner)

    def _ids(self) -> Any:
        return select(SessionRow.id).where(SessionRow.owner == self.owner).scalar_subquery()

    def _lock(self, conn: Connection, session_id: str) -> tuple[str, int, datetime]:
        """The session's status, seq and start, its row locked for this transaction (PostgreSQL;
        SQLite's write transaction already holds the whole database)."""
        row = conn.execute(
            select(SessionRow.status, SessionRow.progress_seq, SessionRow.started_at)
            .where(self._mine(session_id))
            .with_for_update()
        ).first()
        if row is None:
            raise NoSuchSession(session_id)
        return row.status, row.progress_seq, row.started_at

    @classmethod
    def _progress(cls, *, seq: int, seconds_done: int, state: dict[str, Any]) -> dict[str, Any]:
        """The columns a save writes."""
        return {
            "progress_seq": check.whole("The save's sequence number", seq, 0),
            "seconds_done": check.whole("Seconds done", seconds_done, 0),
            **cls._state_columns(state),
            "updated_at": _now(),
        }

    @staticmethod
    def _state_columns(state: dict[str, Any]) -> dict[str, Any]:
        """The state in the columns that keep it (store/saved_state.py), checked."""
        doc, progress = saved_state.split(check.plain_data("session state", state))
        return {"state": doc, **progress._asdict()}
