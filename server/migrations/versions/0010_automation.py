"""automation and reclaim: auto-approval, queue target, licensed-time history

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auto_approve", sa.String(length=16), nullable=False, server_default="OFF")
        )
        batch_op.add_column(sa.Column("auto_approve_domains", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("queue_target_hours", sa.Integer(), nullable=True))
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("licensed_until", server.domain.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("licensed_until")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("queue_target_hours")
        batch_op.drop_column("auto_approve_domains")
        batch_op.drop_column("auto_approve")
