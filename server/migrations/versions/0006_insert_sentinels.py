"""insert sentinels on user and agent

A nullable column SQLAlchemy fills only during a bulk INSERT … RETURNING, so that on SQLite
(whose generated ids carry no order guarantee) the ids of a batch of new users or agents
come back in parameter order from one statement, not one statement per row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 21:46:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("user", "agent"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("_sentinel", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("user", "agent"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("_sentinel")
