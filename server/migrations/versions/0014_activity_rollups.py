"""activity rollups: events stored in compact chunks, with rollups per agent, day and app

``activity_event`` (one row per event) becomes ``activity_chunk`` (the events one batch
reported for an agent and UTC day, encoded together) and ``activity_rollup`` (totals per
agent, origin, UTC day, app and productivity, kept at ingest), and likewise the shadow
tables of removed users. Existing events are converted (and back on downgrade).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models
from server.domain.activity import convert

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = server.domain.models.UTCDateTime
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _chunk_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("origin_agent_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("first_start", _UTC(timezone=True), nullable=False),
        sa.Column("last_start", _UTC(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("events", sa.LargeBinary(), nullable=False),
    ]


def _rollup_columns(*, keyed: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("agent_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("origin_agent_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("app", sa.String(length=256), nullable=False),
        sa.Column("productivity", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("active_seconds", sa.BigInteger(), nullable=False),
        sa.Column("first_start", _UTC(timezone=True), nullable=False),
        sa.Column("last_start", _UTC(timezone=True), nullable=False),
        sa.Column("last_end", _UTC(timezone=True), nullable=False),
    ]


def _new_tables() -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    chunk = op.create_table(
        "activity_chunk",
        sa.Column("id", _BIG_ID, nullable=False),
        *_chunk_columns(),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_chunk_user_day", "activity_chunk", ["user_id", "day"], unique=False)
    op.create_index("ix_activity_chunk_agent_id", "activity_chunk", ["agent_id"], unique=False)
    rollup = op.create_table(
        "activity_rollup",
        *_rollup_columns(keyed=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id", "origin_agent_id", "day", "app", "productivity"),
    )
    op.create_index("ix_activity_rollup_user_day", "activity_rollup", ["user_id", "day"], unique=False)
    shadows = []
    for name, columns in (
        ("removed_activity_chunk", _chunk_columns()),
        ("removed_activity_rollup", _rollup_columns(keyed=False)),
    ):
        shadows.append(
            op.create_table(
                name,
                sa.Column("shadow_id", sa.Integer(), nullable=False),
                *columns,
                sa.PrimaryKeyConstraint("shadow_id"),
            )
        )
        op.create_index(f"ix_{name}_user_id", name, ["user_id"], unique=False)
    assert chunk is not None and rollup is not None
    return chunk, rollup, shadows[0], shadows[1]


def upgrade() -> None:
    chunk, rollup, removed_chunk, removed_rollup = _new_tables()
    conn = op.get_bind()
    old = sa.MetaData()
    convert.to_chunks(conn, convert.event_table("activity_event", old), chunk, rollup)
    convert.to_chunks(
        conn, convert.event_table("removed_activity_event", old, shadow=True), removed_chunk, removed_rollup
    )
    op.drop_index("ix_removed_activity_event_user_id", table_name="removed_activity_event")
    op.drop_table("removed_activity_event")
    with op.batch_alter_table("activity_event", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_user_start")
        batch_op.drop_index("ix_activity_event_agent_id")
    op.drop_table("activity_event")


def _event_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("start", _UTC(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=256), nullable=False),
        sa.Column("title", sa.String(length=2048), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("productivity", sa.String(length=16), nullable=False),
        sa.Column("origin_agent_id", sa.Integer(), nullable=True),
    ]


def downgrade() -> None:
    events = op.create_table(
        "activity_event",
        sa.Column("id", sa.Integer(), nullable=False),
        *_event_columns(),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_event_agent_id", "activity_event", ["agent_id"], unique=False)
    op.create_index(
        "ix_activity_user_start", "activity_event", ["user_id", "start", "duration_seconds"], unique=False
    )
    removed = op.create_table(
        "removed_activity_event",
        sa.Column("shadow_id", sa.Integer(), nullable=False),
        *_event_columns(),
        sa.PrimaryKeyConstraint("shadow_id"),
    )
    op.create_index("ix_removed_activity_event_user_id", "removed_activity_event", ["user_id"], unique=False)
    conn = op.get_bind()
    assert events is not None and removed is not None
    new = sa.MetaData()
    for name, target in (("activity_chunk", events), ("removed_activity_chunk", removed)):
        chunk = sa.Table(name, new, autoload_with=conn)
        convert.to_events(conn, chunk, target)
    for name, index in (
        ("removed_activity_rollup", "ix_removed_activity_rollup_user_id"),
        ("removed_activity_chunk", "ix_removed_activity_chunk_user_id"),
        ("activity_rollup", "ix_activity_rollup_user_day"),
        ("activity_chunk", "ix_activity_chunk_user_day"),
    ):
        op.drop_index(index, table_name=name)
        if name == "activity_chunk":
            op.drop_index("ix_activity_chunk_agent_id", table_name=name)
        op.drop_table(name)
