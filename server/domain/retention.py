"""Retention (docs/behaviour.md, Retention): pending users' activity is kept for the account's ``retentionDays``.

:func:`purge` is the hourly job and ``plm purge``. It deletes, per account, the events of
``PENDING`` users whose start is before ``now - retentionDays``: a rolling window, applied
every hour. ``PendingInfo`` counts the rows that are there, so it is exact about what is
retained; an event outlives its expiry by at most the hour between runs. Licensed users'
activity is never touched here, nor what a user recorded while licensed before a lowered
limit or a release moved it to the queue (events starting before ``user.licensed_until``);
the pending users themselves stay in the queue.

The same run drops housekeeping rows that serve no one past an age:

* ``ingest_batch`` rows older than :data:`INGEST_BATCH_DAYS`: they exist only so a replayed
  batch answers the first call's response; an agent does not retry a batch for a week.
* finished outbox messages (sent, failed or logged) older than :data:`OUTBOX_DAYS`, and
  webhook deliveries older than :data:`WEBHOOK_DELIVERY_DAYS` (their history's length);
* removed users' rows, kept hidden while their removal could be undone, once the undo
  window (``PLM_UNDO_HOURS``) ends: deleted for good (:mod:`server.domain.undo.removed`).

Deletes go in chunks of :data:`CHUNK` rows, each its own short transaction, so a large
backlog never holds the (SQLite) write lock for long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import changes
from server.domain.models import (
    Account,
    ActivityEvent,
    IngestBatch,
    OutboxMessage,
    OutboxStatus,
    User,
    UserStatus,
)
from server.domain.ports import Transactions
from server.domain.undo import removed

INGEST_BATCH_DAYS = 7
OUTBOX_DAYS = 30
WEBHOOK_DELIVERY_DAYS = 7
CHUNK = 5_000


@dataclass
class PurgeReport:
    """What one run deleted."""

    # account id -> pending users' events deleted (accounts with none are left out)
    events_by_account: dict[int, int] = field(default_factory=dict)
    ingest_batches: int = 0
    outbox_messages: int = 0
    # Removed users whose rows were deleted for good (their undo window ended).
    removed_users: int = 0

    @property
    def events(self) -> int:
        return sum(self.events_by_account.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "eventsDeleted": self.events,
            "accounts": [
                {"id": str(account_id), "eventsDeleted": n}
                for account_id, n in sorted(self.events_by_account.items())
            ],
            "ingestBatchesDeleted": self.ingest_batches,
            "outboxMessagesDeleted": self.outbox_messages,
            "removedUsersDeleted": self.removed_users,
        }


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Events of a pending user that start before this instant are due for deletion."""
    return now - timedelta(days=retention_days)


async def _delete(session: AsyncSession, statement: sa.Delete) -> int:
    result = cast(CursorResult[Any], await session.execute(statement))
    return int(result.rowcount)


async def purge_account(session: AsyncSession, account_id: int, now: datetime, limit: int = CHUNK) -> int:
    """Delete up to ``limit`` expired events of the account's pending users; returns how many.

    Holds the account's lock, as approval does, so a user approved concurrently is either
    still pending here (and purged before approval) or already licensed (and untouched).
    Bumps the queue version when anything went: the queue shows retained activity.
    """
    account = await changes.lock_account(session, account_id)
    pending = sa.select(col(User.id)).where(
        col(User.account_id) == account_id, col(User.status) == UserStatus.PENDING
    )
    # Served by ix_activity_user_start: one range scan per pending user. What a user recorded
    # while licensed (before it moved to the queue: licensed_until) is never purged.
    expired = (
        sa.select(col(ActivityEvent.id))
        .join(User, col(User.id) == col(ActivityEvent.user_id))
        .where(
            col(ActivityEvent.user_id).in_(pending),
            col(ActivityEvent.start) < cutoff(now, account.retention_days),
            sa.or_(col(User.licensed_until).is_(None), col(ActivityEvent.start) >= col(User.licensed_until)),
        )
        .limit(limit)
    )
    deleted = await _delete(session, sa.delete(ActivityEvent).where(col(ActivityEvent.id).in_(expired)))
    if deleted:
        await changes.bump_queue_version(session, account_id)
    return deleted


async def _has_expired(session: AsyncSession, account_id: int, before: datetime) -> bool:
    found = await session.execute(
        sa.select(col(ActivityEvent.id))
        .join(User, col(User.id) == col(ActivityEvent.user_id))
        .where(
            col(User.account_id) == account_id,
            col(User.status) == UserStatus.PENDING,
            col(ActivityEvent.start) < before,
            sa.or_(col(User.licensed_until).is_(None), col(ActivityEvent.start) >= col(User.licensed_until)),
        )
        .limit(1)
    )
    return found.first() is not None


async def _purge_chunks(db: Transactions, build: Callable[[], sa.Delete]) -> int:
    total = 0
    while True:
        async with db.write() as session:
            n = await _delete(session, build())
        total += n
        if n < CHUNK:
            return total


async def purge(db: Transactions, now: datetime, undo_window: timedelta = timedelta(hours=24)) -> PurgeReport:
    """One retention run over every account; see the module docstring. ``undo_window``:
    ``PLM_UNDO_HOURS``, how long removed users' rows are kept."""
    report = PurgeReport()
    async with db.read() as session:
        accounts = (await session.execute(sa.select(col(Account.id), col(Account.retention_days)))).all()
    for account_id, retention_days in accounts:
        assert account_id is not None
        # A read first: most accounts have nothing expired, and need no write lock.
        async with db.read() as session:
            if not await _has_expired(session, account_id, cutoff(now, retention_days)):
                continue
        while True:
            async with db.write() as session:
                n = await purge_account(session, account_id, now)
            if n:
                report.events_by_account[account_id] = report.events_by_account.get(account_id, 0) + n
            if n < CHUNK:
                break

    batches_before = now - timedelta(days=INGEST_BATCH_DAYS)
    report.ingest_batches = await _purge_chunks(
        db,
        lambda: sa.delete(IngestBatch).where(
            col(IngestBatch.id).in_(
                sa.select(col(IngestBatch.id))
                .where(col(IngestBatch.created_at) < batches_before)
                .limit(CHUNK)
            )
        ),
    )
    outbox_before = now - timedelta(days=OUTBOX_DAYS)
    report.outbox_messages = await _purge_chunks(
        db,
        lambda: sa.delete(OutboxMessage).where(
            col(OutboxMessage.id).in_(
                sa.select(col(OutboxMessage.id))
                .where(
                    sa.or_(
                        sa.and_(
                            col(OutboxMessage.status) != OutboxStatus.PENDING,
                            col(OutboxMessage.created_at) < outbox_before,
                        ),
                        # Retried for 3 days at most: a week-old delivery has finished.
                        sa.and_(
                            col(OutboxMessage.kind) == "webhook",
                            col(OutboxMessage.created_at) < now - timedelta(days=WEBHOOK_DELIVERY_DAYS),
                        ),
                    )
                )
                .limit(CHUNK)
            )
        ),
    )
    report.removed_users = await removed.purge(db, now - undo_window)
    return report
