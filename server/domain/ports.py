"""What the domain takes from the layers above it, as Protocols they satisfy structurally.

Most domain functions run inside one transaction their caller opened and take its session.
A few run several short transactions of their own (a digest per window, retention in
chunks) or read settings; they take these instead of the infrastructure's classes, so the
domain imports nothing from ``server.infra``: :class:`server.infra.db.Database` is a
:class:`Transactions` and :class:`server.infra.settings.Settings` a :class:`DigestSettings`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class Transactions(Protocol):
    """Opens transactions: ``async with db.write() as session`` commits on success."""

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A read-only session that sees one snapshot until it ends."""
        ...

    def write(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A write transaction; commits on success, rolls back on any exception."""
        ...


class DigestSettings(Protocol):
    """The settings the pending-user digests read (``PLM_NOTIFY_DIGEST_SECONDS`` etc.)."""

    @property
    def notify_digest_seconds(self) -> int:
        """The digest window: arrivals within it make one email per admin."""
        ...

    @property
    def public_url(self) -> str:
        """Where the digest's link points; its host names the Message-ID."""
        ...

    @property
    def smtp_from(self) -> str:
        """The digests' sender: the From header, and the envelope sender's address."""
        ...
