"""The column types and helpers of the tables in :mod:`server.domain.models`.

Times are stored as UTC and always come back timezone-aware (:class:`UTCDateTime`), on
SQLite as on PostgreSQL; enums are stored as plain strings; agent keys are compared
case-insensitively through a normalised key (:func:`agent_key`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field

# Separates the parts of a normalised agent key. Ingestion rejects control characters in
# names, so the joined key is unambiguous.
KEY_SEPARATOR = "\x1f"


def agent_key(device_name: str, domain: str, logon_name: str) -> str:
    """The case-insensitive identity of an agent: ``(deviceName, domain, logonName)``."""
    return KEY_SEPARATOR.join((device_name, domain, logon_name)).casefold()


def login_key(device_name: str, domain: str, logon_name: str) -> str | None:
    """``domain\\logonName`` for a domain account; ``None`` for a local one (domain == device)."""
    if domain.casefold() == device_name.casefold():
        return None
    return KEY_SEPARATOR.join((domain, logon_name)).casefold()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no zone type: store naive UTC so strings sort by time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite reuses the highest rowid after a delete; ids the API hands out must never come back
# as someone else (an admin acting on a removed user's id must get NOT_FOUND).
NO_ID_REUSE = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    # Stored as plain strings (no database enum type: adding a value needs no migration).
    return sa.Enum(cls, native_enum=False, length=16, create_constraint=False, validate_strings=True)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _fk(target: str, *, index: bool = True, ondelete: str = "CASCADE", nullable: bool = False) -> Any:
    return Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index
        )
    )
