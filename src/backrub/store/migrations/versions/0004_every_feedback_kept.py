"""Every feedback event the engine applied is kept, the same words at the same moment too.

Schema 0003 took an event's content (session, moment, word, step, area) for its identity and
dropped a second one, a unique index turning it into nothing. But two taps of "softer" while a
session is paused (its active time still) are two events, each re-planning the rest; the record
kept one. Each accepted event now brings its own row (the `seq` rule already refuses an event
sent again), so the unique index becomes a plain one on (`session_id`, `at`): a session's events
in the order heard. The downgrade drops repeats again (the first stays), as 0003 did.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Keep backrub.store.migration.SCHEMA_HEAD equal to the newest revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNIQUE = ("session_id", "at", "kind", "step", "region")
UNIQUE_NAME = "uq_feedback_events_session_id_at_kind_step_region"
ORDER_NAME = "ix_feedback_events_session_id_at"
# The table as these steps see it, whatever later revisions make of it.
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
    op.drop_index(UNIQUE_NAME, table_name="feedback_events")
    op.create_index(ORDER_NAME, "feedback_events", ["session_id", "at"], unique=False)


def downgrade() -> None:
    first = (
        sa.select(sa.func.min(_FEEDBACK.c.id))
        .group_by(*(_FEEDBACK.c[name] for name in UNIQUE))
        .scalar_subquery()
    )
    op.get_bind().execute(sa.delete(_FEEDBACK).where(_FEEDBACK.c.id.not_in(first)))
    op.drop_index(ORDER_NAME, table_name="feedback_events")
    op.create_index(UNIQUE_NAME, "feedback_events", list(UNIQUE), unique=True)
