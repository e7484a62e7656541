"""The column types and helpers of the tables in :mod:`server.domain.models`.

Times are stored as UTC and always come back timezone-aware (:class:`UTCDateTime`), on
SQLite as on PostgreSQL; enums are stored as plain strings; agent keys are compared
case-insensitively through a normalised key (:func:`agent_key`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
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
    """A timestamp stored in UTC and returned timezone-aware on every database.

    On SQLite (no zone type) it is stored as naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``,
    so strings sort by time. There the conversions are one function each, not the
    decorator's two around SQLAlchemy's: a page reads hundreds of timestamps, and
    ``replace(tzinfo=...)`` alone costs ~0.7 us a value. What they give is the decorator's,
    value for value (``tests/server/test_utc_datetime.py``).
    """

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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        return _sqlite_text if dialect.name == "sqlite" else super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        general = super().result_processor(dialect, coltype)
        assert general is not None

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if type(value) is str and len(value) == _TEXT_LENGTH:
                try:
                    return _from_text(value + "+00:00")
                except ValueError:  # not what _sqlite_text writes: the general path says why
                    pass
            return general(value)

        return process


_from_text = datetime.fromisoformat
# len("YYYY-MM-DD HH:MM:SS.ffffff"): every value SQLAlchemy or _sqlite_text stores.
_TEXT_LENGTH = 26


def _sqlite_text(value: datetime | None) -> str | None:
    """What SQLAlchemy's SQLite ``DATETIME`` stores for ``value`` in UTC, byte for byte."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:_TEXT_LENGTH]


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
