"""undo: what each action records for its undo, the agent a report was made as, and the
shadow tables that keep removed users' rows until their undo window ends

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import server.domain.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, server.domain.models.UTCDateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undo", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("undone_by", sa.Integer(), nullable=True))
        batch_op.create_index("ix_audit_user_id", ["user_id", "id"], unique=False)
    with op.batch_alter_table("agent_alias", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_agent_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("activity_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_agent_id", sa.Integer(), nullable=True))

    op.create_table(
        "removed_user",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        _text("display_name", 256),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        _ts("licensed_at", nullable=True),
        sa.Column("pending_reason", sa.String(length=16), nullable=True),
        _ts("pending_since", nullable=True),
        _ts("licensed_until", nullable=True),
        _ts("removed_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_removed_user_removed_at", "removed_user", ["removed_at"], unique=False)
    op.create_table(
        "removed_agent",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _text("device_name", 256),
        _text("domain", 256),
        _text("logon_name", 256),
        _text("key", 800),
        _text("login_key", 520, nullable=True),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_removed_agent_user_id", "removed_agent", ["user_id"], unique=False)
    op.create_table(
        "removed_agent_alias",
        sa.Column("shadow_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        _text("device_name", 256),
        _text("domain", 256),
        _text("logon_name", 256),
        _text("key", 800),
        _ts("created_at"),
        sa.Column("origin_agent_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("shadow_id"),
    )
    op.create_index("ix_removed_agent_alias_agent_id", "removed_agent_alias", ["agent_id"], unique=False)
    op.create_table(
        "removed_activity_event",
        sa.Column("shadow_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        _ts("start"),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        _text("app", 256),
        _text("title", 2048, nullable=True),
        _text("url", 2048, nullable=True),
        _text("productivity", 16),
        sa.Column("origin_agent_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("shadow_id"),
    )
    op.create_index("ix_removed_activity_event_user_id", "removed_activity_event", ["user_id"], unique=False)


def downgrade() -> None:
    for table, index in (
        ("removed_activity_event", "ix_removed_activity_event_user_id"),
        ("removed_agent_alias", "ix_removed_agent_alias_agent_id"),
        ("removed_agent", "ix_removed_agent_user_id"),
        ("removed_user", "ix_removed_user_removed_at"),
    ):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
    with op.batch_alter_table("activity_event", schema=None) as batch_op:
        batch_op.drop_column("origin_agent_id")
    with op.batch_alter_table("agent_alias", schema=None) as batch_op:
        batch_op.drop_column("origin_agent_id")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_user_id")
        batch_op.drop_column("undone_by")
        batch_op.drop_column("undo")
