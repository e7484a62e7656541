"""job runs and readiness

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_lease", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_run_at", server.domain.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "readiness_probe",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", server.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("readiness_probe")
    with op.batch_alter_table("job_lease", schema=None) as batch_op:
        batch_op.drop_column("last_run_at")
