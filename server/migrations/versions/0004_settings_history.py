"""settings history

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 21:22:26.074362
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "settings_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", server.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("manual_review_before", sa.Boolean(), nullable=False),
        sa.Column("manual_review_after", sa.Boolean(), nullable=False),
        sa.Column("license_limit_before", sa.Integer(), nullable=False),
        sa.Column("license_limit_after", sa.Integer(), nullable=False),
        sa.Column("moved_to_pending", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["admin.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("settings_change", schema=None) as batch_op:
        batch_op.create_index("ix_settings_change_account_id", ["account_id", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("settings_change", schema=None) as batch_op:
        batch_op.drop_index("ix_settings_change_account_id")

    op.drop_table("settings_change")
