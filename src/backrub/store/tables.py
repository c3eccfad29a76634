"""The database tables. Only the store reads them; everything else gets core types.

A change here needs a new Alembic revision in `migrations/versions/` (the tests compare the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

# Named constraints, so Alembic's batch mode can rebuild SQLite tables in later revisions.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OWNER_MAX = 200
REGION_MAX = 100
EMAIL_MAX = 254


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend.

    PostgreSQL keeps the instant (`timestamptz`); SQLite keeps only text without an offset, so
    values are written as UTC and read back with UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("backrub stores only timezone-aware datetimes")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRow(Base):
    """One massage session. Safety answers are not kept: only the verdict and the ids behind it."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Whose session it is; every query is scoped to one owner.
    owner: Mapped[str] = mapped_column(String(OWNER_MAX))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    minutes_planned: Mapped[int] = mapped_column(Integer)
    seconds_done: Mapped[int] = mapped_column(Integer)
    # The sequence number of the last progress save applied; older saves are ignored.
    progress_seq: Mapped[int] = mapped_column(Integer)
    focus: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    verdict: Mapped[str] = mapped_column(String(16))
    verdict_conditions: Mapped[list[str]] = mapped_column(JSON)
    tension_before: Mapped[int | None] = mapped_column(Integer)
    tension_after: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    tender: Mapped[list[str]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The engine's saved state but for its progress, which has the columns below: a progress
    # save writes them, and this document only when the timeline changed (store/saved_state.py).
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Seconds of active time (not paused) so far; whether the session has begun; the ids of
    # the cues given.
    # (The defaults filled the rows schema 0003 found; the store always writes all three.)
    active: Mapped[float] = mapped_column(Float, server_default="0")
    started: Mapped[bool] = mapped_column(Boolean, server_default=false())
    fired: Mapped[list[str]] = mapped_column(JSON, server_default="[]")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Owner first: every query filters by owner, most then order by start.
        Index("ix_sessions_owner_started_at", "owner", "started_at"),
        CheckConstraint("status IN ('active', 'finished', 'stopped')", name="status"),
        CheckConstraint("mode IN ('self', 'partner')", name="mode"),
        # A `stop` verdict never starts a session.
        CheckConstraint("verdict IN ('clear', 'caution')", name="verdict"),
        CheckConstraint("minutes_planned >= 1", name="minutes_planned"),
        CheckConstraint("seconds_done >= 0", name="seconds_done"),
        CheckConstraint("progress_seq >= 0", name="progress_seq"),
        CheckConstraint(
            "tension_before IS NULL OR (tension_before >= 0 AND tension_before <= 10)",
            name="tension_before",
        ),
        CheckConstraint(
            "tension_after IS NULL OR (tension_after >= 0 AND tension_after <= 10)",
            name="tension_after",
        ),
        CheckConstraint("status = 'active' OR ended_at IS NOT NULL", name="ended"),
    )


class FeedbackRow(Base):
    """Something the receiver said during a session ("softer", "tender", …)."""

    __tablename__ = "feedback_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    # Seconds of active session time.
    at: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(REGION_MAX))

    __table_args__ = (
        # A session's events in the order heard. Not unique: the same word twice at the same
        # moment (tapped twice while paused) is two events, each of which re-planned the rest.
        Index("ix_feedback_events_session_id_at", "session_id", "at"),
        CheckConstraint("kind IN ('good', 'softer', 'firmer', 'tender')", name="kind"),
        CheckConstraint("at >= 0", name="at"),
        CheckConstraint("step >= 0", name="step"),
    )


class UserRow(Base):
    """An account, when backrub serves beyond this computer. Its id is the owner of its sessions."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Stored lower-cased, so an address signs in however it is typed.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the person agreed to backrub keeping their health-related answers (sign-up).
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginRow(Base):
    """A signed-in browser. Only a hash of its token is kept: a copy of the database signs no
    one in."""

    __tablename__ = "logins"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FailedLoginRow(Base):
    """A failed sign-in, kept an hour for throttling: in the database, so every app process
    counts the same attempts."""

    __tablename__ = "failed_logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # "account:<email>" or "client:<address>" (hashed: an address typed wrong is not kept).
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_failed_logins_key_at", "key", "at"),)


class RemoteRow(Base):
    """The receiver's remote: a short code that lets a second phone send feedback to one live
    session, and nothing else."""

    __tablename__ = "remotes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RemoteMessageRow(Base):
    """Feedback sent from the receiver's remote, waiting for the giver's player to take it."""

    __tablename__ = "remote_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_remote_messages_session_id_id", "session_id", "id"),
        CheckConstraint("kind IN ('good', 'softer', 'firmer', 'tender')", name="kind"),
    )
