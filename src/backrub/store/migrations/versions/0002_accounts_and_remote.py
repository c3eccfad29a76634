"""Accounts (users, signed-in browsers, failed sign-ins) and the receiver's remote.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Keep backrub.store.migration.SCHEMA_HEAD equal to the newest revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "logins",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_logins")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_logins_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index("ix_logins_user_id", "logins", ["user_id"], unique=False)
    op.create_table(
        "failed_logins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_logins")),
    )
    op.create_index("ix_failed_logins_key_at", "failed_logins", ["key", "at"], unique=False)
    op.create_table(
        "remotes",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_remotes")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_remotes_session_id_sessions"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_remotes_session_id", "remotes", ["session_id"], unique=False)
    op.create_table(
        "remote_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_messages")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_remote_messages_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "kind IN ('good', 'softer', 'firmer', 'tender')", name=op.f("ck_remote_messages_kind")
        ),
    )
    op.create_index(
        "ix_remote_messages_session_id_id", "remote_messages", ["session_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_remote_messages_session_id_id", table_name="remote_messages")
    op.drop_table("remote_messages")
    op.drop_index("ix_remotes_session_id", table_name="remotes")
    op.drop_table("remotes")
    op.drop_index("ix_failed_logins_key_at", table_name="failed_logins")
    op.drop_table("failed_logins")
    op.drop_index("ix_logins_user_id", table_name="logins")
    op.drop_table("logins")
    op.drop_table("users")
