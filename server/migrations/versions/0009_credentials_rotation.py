"""credentials: revoked admins, the previous ingest key during its grace period

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("admin", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", server.domain.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_ingest_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_ingest_key_expires_at",
                server.domain.models.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_account_previous_ingest_key_hash", ["previous_ingest_key_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index("ix_account_previous_ingest_key_hash")
        batch_op.drop_column("previous_ingest_key_expires_at")
        batch_op.drop_column("previous_ingest_key_hash")
    with op.batch_alter_table("admin", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
