"""A session's progress in columns of its own, beside its state document; each feedback event
stored once.

The active time, whether the session has started and the cues given move out of the `state`
document into `active`, `started` and `fired`, so a progress save writes them alone; the
feedback heard leaves the document (it is kept as `feedback_events` rows already). See
backrub/store/saved_state.py. The index on `feedback_events.session_id` becomes a unique one on
(`session_id`, `at`, `kind`, `step`, `region`): each event once, repeats dropped. On
PostgreSQL, `sessions` leaves half of each page free (fillfactor 50) for its rows' next versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Keep backrub.store.migration.SCHEMA_HEAD equal to the newest revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backrub.store.saved_state import from_older

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 500
UNIQUE = ("session_id", "at", "kind", "step", "region")
UNIQUE_NAME = "uq_feedback_events_session_id_at_kind_step_region"
# Half of each page of sessions left free for the next version of its rows (see `upgrade`).
SESSIONS_FILLFACTOR = 50
# The tables as these steps see them, whatever later revisions make of them.
_SESSIONS = sa.table(
    "sessions",
    sa.column("id", sa.String),
    sa.column("seconds_done", sa.Integer),
    sa.column("progress_seq", sa.Integer),
    sa.column("state", sa.JSON),
    sa.column("active", sa.Float),
    sa.column("started", sa.Boolean),
    sa.column("fired", sa.JSON),
)
_FEEDBACK = sa.table(
    "feedback_events",
    sa.column("id", sa.Integer),
    sa.column("session_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("at", sa.Float),
    sa.column("step", sa.Integer),
    sa.column("region", sa.String),
)


def upgrade() -> None:
    op.add_column("sessions", sa.Column("active", sa.Float(), nullable=False, server_default="0"))
    op.add_column(
        "sessions", sa.Column("started", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("sessions", sa.Column("fired", sa.JSON(), nullable=False, server_default="[]"))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_SESSIONS.c.id, _SESSIONS.c.seconds_done, _SESSIONS.c.state))
    changes = []
    for row in rows.all():
        doc, progress = from_older(row.state, row.seconds_done)
        changes.append(
            {
                "b_id": row.id,
                "b_state": doc,
                "b_active": progress.active,
                "b_started": progress.started,
                "b_fired": progress.fired,
            }
        )
    _update(conn, changes)
    # Each event once (the store always kept it so; a restored backup need not have): the
    # first of any repeats stays.
    first = (
        sa.select(sa.func.min(_FEEDBACK.c.id))
        .group_by(*(_FEEDBACK.c[name] for name in UNIQUE))
        .scalar_subquery()
    )
    conn.execute(sa.delete(_FEEDBACK).where(_FEEDBACK.c.id.not_in(first)))
    op.drop_index("ix_feedback_events_session_id", table_name="feedback_events")
    op.create_index(UNIQUE_NAME, "feedback_events", list(UNIQUE), unique=True)
    if conn.dialect.name == "postgresql":
        # A session's row is saved again at every step of a player's session: with room left
        # on its page, PostgreSQL writes the new version beside it without touching the
        # indexes (a "HOT" update).
        op.execute(f"ALTER TABLE sessions SET (fillfactor = {SESSIONS_FILLFACTOR})")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("ALTER TABLE sessions RESET (fillfactor)")
    heard: dict[str, list[dict[str, object]]] = {}
    events = conn.execute(
        sa.select(_FEEDBACK).order_by(_FEEDBACK.c.session_id, _FEEDBACK.c.at, _FEEDBACK.c.id)
    )
    for event in events:
        heard.setdefault(event.session_id, []).append(
            {"kind": event.kind, "at": event.at, "step": event.step, "region": event.region}
        )
    rows = conn.execute(sa.select(_SESSIONS)).all()
    changes = [
        {
            "b_id": row.id,
            "b_state": {
                **row.state,
                "active": row.active,
                "anchor": None,
                "started": row.started,
                "fired": row.fired,
                "feedback": heard.get(row.id, []),
                "seq": row.progress_seq,
            }
            if isinstance(row.state, dict)
            else row.state,
        }
        for row in rows
    ]
    _update(conn, changes)
    op.drop_index(UNIQUE_NAME, table_name="feedback_events")
    op.create_index(
        "ix_feedback_events_session_id", "feedback_events", ["session_id"], unique=False
    )
    for name in ("fired", "started", "active"):
        op.drop_column("sessions", name)


def _update(conn: sa.Connection, changes: list[dict[str, object]]) -> None:
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        names = [k.removeprefix("b_") for k in batch[0] if k != "b_id"]
        conn.execute(
            sa.update(_SESSIONS)
            .where(_SESSIONS.c.id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(f"b_{k}") for k in names}),
            batch,
        )
