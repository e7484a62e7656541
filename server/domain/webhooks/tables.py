"""The ``webhook`` table: one endpoint of an account, and the format its deliveries take.

Its deliveries are rows of the generic outbox (``OutboxMessage`` with ``kind`` "webhook"
and ``webhook_id``), written in the transaction of the event they report.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.domain.models import NO_ID_REUSE, UTCDateTime


class WebhookFormat(str, enum.Enum):
    STANDARD = "STANDARD"
    SLACK = "SLACK"


class Webhook(SQLModel, table=True):
    """An endpoint. ``secret`` signs STANDARD deliveries (SLACK's URL is its secret); it is
    stored as given out, because signing needs it, and never shown again after creation or
    rotation. ``previous_secret`` also signs until ``previous_secret_until`` (a rotation's grace).
    """

    __tablename__ = "webhook"
    __table_args__ = (NO_ID_REUSE,)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    url: str = Field(max_length=2048)
    format: WebhookFormat = Field(
        sa_column=sa.Column(sa.Enum(WebhookFormat, native_enum=False, length=16), nullable=False)
    )
    # JSON list of QueueAction values; null: every action, including ones added later.
    actions: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    enabled: bool = True
    # Set when the server disabled it (410 Gone, or failing for 3 days); null otherwise.
    disabled_reason: str | None = Field(default=None, max_length=512)
    disabled_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    secret: str | None = Field(default=None, max_length=128)
    previous_secret: str | None = Field(default=None, max_length=128)
    previous_secret_until: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    # The first failed attempt since the last delivered one; null while it delivers.
    failing_since: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
