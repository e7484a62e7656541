"""The settings history's table: who changed an account's settings, when, from what to what.

Beside :mod:`server.domain.models` (which holds every other table) only to keep that module
within the line limit; read by ``settingsHistory`` (:mod:`server.domain.reads.lists`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.domain.models import NO_ID_REUSE, UTCDateTime


class SettingsChange(SQLModel, table=True):
    """Who changed an account's settings, when, from what to what.

    The audit trail of ``updateAccountSettings`` (and ``plm account set-limit``): queue
    entries only record the users a lowered limit moved, and a toggle moves nobody.
    """

    __tablename__ = "settings_change"
    __table_args__ = (sa.Index("ix_settings_change_account_id", "account_id", "id"), NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False)
    )
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # Null when the system acted (the CLI); an admin's deletion keeps the entry.
    actor_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("admin.id", ondelete="SET NULL"), nullable=True),
    )
    manual_review_before: bool
    manual_review_after: bool
    license_limit_before: int
    license_limit_after: int
    moved_to_pending: int = 0
