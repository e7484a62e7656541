"""covering activity index: (user_id, start, duration_seconds)

A pending user's retained totals (count, sum of durations, oldest start) and the retention
purge read only these columns; with the duration in the index those reads never touch the
table (SQLite: a covering index; PostgreSQL: an index-only scan). Same number of indexes on
the hot insert path as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 21:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activity_event", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_user_start")
        batch_op.create_index(
            "ix_activity_user_start", ["user_id", "start", "duration_seconds"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("activity_event", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_user_start")
        batch_op.create_index("ix_activity_user_start", ["user_id", "start"], unique=False)
