"""Retention (docs/behaviour.md, Retention): pending users' activity is kept for the account's ``retentionDays``.

:func:`purge` is the hourly job and ``plm purge``. It deletes, per account, the events of
``PENDING`` users whose start is before ``now - retentionDays``: a rolling window, applied
every hour. ``PendingInfo`` counts what is stored, so it is exact about what is retained;
an event outlives its expiry by at most the hour between runs. Activity is stored as chunks
and rollups (:mod:`server.domain.activity.chunks`): rows holding only expired events are
deleted whole, and the day the cutoff falls in is rewritten from its chunks
(:func:`purge_account`). Licensed users'
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

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.domain import changes, lookups
from server.domain.activity import chunks
from server.domain.activity.chunks import CHUNK as _CHUNKS
from server.domain.activity.chunks import ROLLUP as _ROLLUPS
from server.domain.activity.chunks import ROLLUP_KEY
from server.domain.models import (
    Account,
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


_R, _C, _U = _ROLLUPS.c, _CHUNKS.c, sa.inspect(User).local_table.c
_USERS = sa.inspect(User).local_table


@functools.cache
def _delete_rollups(n: int) -> sa.Delete:
    """Rollup rows by their unique key, ``n`` at a time (an OR of equalities through the
    unique index; a row-value IN list reads the whole table on SQLite: server.domain.lookups)."""
    return sa.delete(_ROLLUPS).where(lookups.any_of(tuple(_R[k] for k in ROLLUP_KEY), n))


def _expired(first: Any, last: Any, before: datetime) -> tuple[Any, Any]:
    """Whether rows spanning starts ``[first, last]`` hold only expired events, or some.

    An event expires when it starts before ``before`` and not before ``licensed_until``.
    """
    moved = _U.licensed_until
    wholly = sa.and_(last < before, sa.or_(moved.is_(None), first >= moved))
    some = sa.and_(first < before, sa.or_(moved.is_(None), last >= moved))
    return wholly, some


@dataclass(frozen=True, slots=True)
class Purged:
    events: int
    done: bool


async def purge_account(
    session: AsyncSession, account_id: int, now: datetime, limit: int | None = None
) -> Purged:
    """Delete expired events of the account's pending users, up to ``limit`` rows of each kind.

    Rollup rows and chunks holding only expired events are deleted; the user-days where the
    cutoff (or a moved user's ``licensed_until``) falls inside a row are rewritten from their
    chunks (:func:`chunks.rewrite`). Holds the account's lock, as approval does, so a user
    approved concurrently is either still pending here (and purged before approval) or
    already licensed (and untouched). Bumps the queue version when anything went: the queue
    shows retained activity.
    """
    limit = CHUNK if limit is None else limit
    account = await changes.lock_account(session, account_id)
    before = cutoff(now, account.retention_days)
    pending = sa.and_(_U.account_id == account_id, _U.status == UserStatus.PENDING)
    cut: set[tuple[int, Any]] = set()
    for table in (_ROLLUPS, _CHUNKS):
        wholly, some = _expired(table.c.first_start, table.c.last_start, before)
        found = await session.execute(
            sa.select(table.c.user_id, table.c.day)
            .join(_USERS, _U.id == table.c.user_id)
            .where(pending, some, sa.not_(wholly))
            .distinct()
            .limit(limit)
        )
        cut.update((int(u), d) for u, d in found)
    done = len(cut) < limit
    moved: dict[int, datetime | None] = {}
    if cut:
        users = await session.execute(
            sa.select(_U.id, _U.licensed_until).where(_U.id.in_(sorted({u for u, _ in cut})))
        )
        moved = {int(u): until for u, until in users}

    def keep(s: chunks.StoredEvent) -> bool:
        until = moved[s.user_id]
        return not (s.event.start < before and (until is None or s.event.start >= until))

    deleted = await chunks.rewrite(session, cut, keep)
    # Then whole rows: chunks (counting their events) and rollup rows.
    wholly, _ = _expired(_C.first_start, _C.last_start, before)
    gone = (
        await session.execute(
            sa.select(_C.id, _C.event_count)
            .join(_USERS, _U.id == _C.user_id)
            .where(pending, wholly)
            .limit(limit)
        )
    ).all()
    if gone:
        deleted += sum(int(n) for _, n in gone)
        await session.execute(sa.delete(_CHUNKS).where(_C.id.in_([int(i) for i, _ in gone])))
    wholly, _ = _expired(_R.first_start, _R.last_start, before)
    rows = (
        await session.execute(
            sa.select(*(_R[k] for k in ROLLUP_KEY))
            .join(_USERS, _U.id == _R.user_id)
            .where(pending, wholly)
            .limit(limit)
        )
    ).all()
    for chunk in lookups.chunked([tuple(r) for r in rows]):
        await session.execute(_delete_rollups(len(chunk)), lookups.params(chunk))
    done = done and len(gone) < limit and len(rows) < limit
    if deleted:
        await changes.bump_queue_version(session, account_id)
    return Purged(deleted, done)


async def _has_expired(session: AsyncSession, account_id: int, before: datetime) -> bool:
    """Whether the account's pending users hold any expired event (by their rollup rows)."""
    _, some = _expired(_R.first_start, _R.last_start, before)
    found = await session.execute(
        sa.select(_R.user_id)
        .join(_USERS, _U.id == _R.user_id)
        .where(_U.account_id == account_id, _U.status == UserStatus.PENDING, some)
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
                purged = await purge_account(session, account_id, now)
            if purged.events:
                n = report.events_by_account.get(account_id, 0)
                report.events_by_account[account_id] = n + purged.events
            if purged.done:
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
