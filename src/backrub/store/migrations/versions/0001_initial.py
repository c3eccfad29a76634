"""Session history: sessions and their feedback events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Keep backrub.store.migration.SCHEMA_HEAD equal to the newest revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("minutes_planned", sa.Integer(), nullable=False),
        sa.Column("seconds_done", sa.Integer(), nullable=False),
        sa.Column("progress_seq", sa.Integer(), nullable=False),
        sa.Column("focus", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("verdict_conditions", sa.JSON(), nullable=False),
        sa.Column("tension_before", sa.Integer(), nullable=True),
        sa.Column("tension_after", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("tender", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.CheckConstraint(
            "status IN ('active', 'finished', 'stopped')", name=op.f("ck_sessions_status")
        ),
        sa.CheckConstraint("mode IN ('self', 'partner')", name=op.f("ck_sessions_mode")),
        sa.CheckConstraint("verdict IN ('clear', 'caution')", name=op.f("ck_sessions_verdict")),
        sa.CheckConstraint("minutes_planned >= 1", name=op.f("ck_sessions_minutes_planned")),
        sa.CheckConstraint("seconds_done >= 0", name=op.f("ck_sessions_seconds_done")),
        sa.CheckConstraint("progress_seq >= 0", name=op.f("ck_sessions_progress_seq")),
        sa.CheckConstraint(
            "tension_before IS NULL OR (tension_before >= 0 AND tension_before <= 10)",
            name=op.f("ck_sessions_tension_before"),
        ),
        sa.CheckConstraint(
            "tension_after IS NULL OR (tension_after >= 0 AND tension_after <= 10)",
            name=op.f("ck_sessions_tension_after"),
        ),
        sa.CheckConstraint(
            "status = 'active' OR ended_at IS NOT NULL", name=op.f("ck_sessions_ended")
        ),
    )
    op.create_index(op.f("ix_sessions_owner_started_at"), "sessions", ["owner", "started_at"])
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_events")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_feedback_events_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "kind IN ('good', 'softer', 'firmer', 'tender')", name=op.f("ck_feedback_events_kind")
        ),
        sa.CheckConstraint("at >= 0", name=op.f("ck_feedback_events_at")),
        sa.CheckConstraint("step >= 0", name=op.f("ck_feedback_events_step")),
    )
    op.create_index(
        "ix_feedback_events_session_id", "feedback_events", ["session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_events_session_id"), table_name="feedback_events")
    op.drop_table("feedback_events")
    op.drop_index(op.f("ix_sessions_owner_started_at"), table_name="sessions")
    op.drop_table("sessions")
