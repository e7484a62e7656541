"""webhooks: the webhook table, and the outbox's kind and webhook delivery columns

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.domain.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = server.domain.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column(
            "format",
            sa.Enum("STANDARD", "SLACK", name="webhookformat", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("actions", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=512), nullable=True),
        sa.Column("disabled_at", _UTC(timezone=True), nullable=True),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret_until", _UTC(timezone=True), nullable=True),
        sa.Column("failing_since", _UTC(timezone=True), nullable=True),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("webhook", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_account_id"), ["account_id"], unique=False)

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="mail"))
        batch_op.add_column(sa.Column("webhook_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "event_action",
                sa.Enum(
                    "ENTERED",
                    "APPROVED",
                    "ASSIGNED",
                    "MERGED",
                    "REMOVED",
                    name="queueaction",
                    native_enum=False,
                    length=16,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("event_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("response_code", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_outbox_kind_status_due", ["kind", "status", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_outbox_webhook_id", ["webhook_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_webhook_id")
        batch_op.drop_index("ix_outbox_kind_status_due")
        batch_op.drop_column("response_code")
        batch_op.drop_column("event_user_id")
        batch_op.drop_column("event_action")
        batch_op.drop_column("webhook_id")
        batch_op.drop_column("kind")
    with op.batch_alter_table("webhook", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_account_id"))
    op.drop_table("webhook")
