"""The transactional outbox: messages written in the transaction that decided to send them,
delivered later by a scheduled job, at least once.

A message has a :class:`Kind` (mail, webhook), a stable key, a destination, a payload
built once so every attempt sends the same bytes, a status, its attempts and the time of
its next attempt. :func:`deliver` claims the due messages and hands each kind's batch to
the :class:`Sender` registered for that kind, which reports every message's outcome
through a :class:`Delivery`:

* **claimed**: ``next_attempt_at`` doubles as the claim. A sender pushes it
  :data:`CLAIM_SECONDS` ahead before sending (``FOR UPDATE SKIP LOCKED`` lets senders on
  PostgreSQL take disjoint rows); if it dies mid-delivery the message is due again after
  that long. The value written is the claim's token: a sender renews the claim just before
  each send and skips a message whose token changed (another sender took it).
* **delivered** (``SENT``) only after the receiver accepted it;
* **retried** with the sender's backoff on trouble that may pass;
* **failed** for good on a permanent refusal, kept with the reason for an operator;
* **logged** when there is nowhere to send it (no SMTP server configured).

Delivery is at least once: a crash between the receiver's acceptance and our commit sends
the message again, with the same key, so the repeat is recognisable.

In the ``outbox_message`` table, ``kind`` is the :class:`Kind`, ``message_id`` the key,
``sender``/``recipient`` the origin and destination (a mail's envelope; a webhook delivery's
endpoint id) and ``content`` the payload. Mail goes out through :func:`deliver` (the
``notifications`` job); webhook deliveries are claimed per endpoint by their own job
(:mod:`server.infra.webhooks`), with :func:`claim`'s ``per_destination`` bound.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import col

from server.domain.models import OutboxMessage, OutboxStatus
from server.infra.clock import Clock
from server.infra.db import Database

log = logging.getLogger(__name__)

# A sender pushes a claimed message's next attempt this far ahead before sending it.
CLAIM_SECONDS = 300
BACKOFF_FIRST_SECONDS = 15
BACKOFF_CAP_SECONDS = 600
DELIVERY_BATCH = 50
_ERROR_LIMIT = 2048


class Kind(str, enum.Enum):
    MAIL = "mail"
    WEBHOOK = "webhook"


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try after ``attempts`` failed ones: 15 s, 30 s, 60 s … 10 min."""
    return int(min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    logged: int = 0
    # Claimed by this sender, then re-claimed by another before this one reached it.
    lost: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """A claimed message: what its sender needs, and the claim that makes it ours."""

    id: int
    kind: Kind
    #: Stable across attempts (a mail's Message-ID): what a receiver recognises repeats by.
    key: str
    #: Who it is from (a mail's envelope sender).
    origin: str
    #: Where it goes (a mail's recipient address).
    destination: str
    #: What is sent (a mail's whole RFC 5322 text).
    payload: str
    attempts: int
    #: The claim's deadline, as written: the token that says the row is still ours.
    claimed_until: datetime
    #: When the message was written (a webhook delivery gives up 3 days after).
    created_at: datetime | None = None


class Sender(Protocol):
    """Delivers the claimed messages of one kind and reports each one's outcome."""

    async def send(self, batch: Sequence[Message], delivery: Delivery) -> None:
        """Send ``batch``, calling :meth:`Delivery.renew` before each message and one
        outcome (delivered, retry, failed or logged) for each message it renewed."""
        ...

    def backoff_seconds(self, attempts: int) -> int:
        """How long to wait after ``attempts`` failed attempts before the next one."""
        ...


def _due(kind: Kind, now: datetime) -> list[Any]:
    return [
        col(OutboxMessage.kind) == kind.value,
        col(OutboxMessage.status) == OutboxStatus.PENDING,
        col(OutboxMessage.next_attempt_at) <= now,
    ]


async def has_due(db: Database, kind: Kind, now: datetime, skip: Collection[str] = ()) -> bool:
    """Whether a message of ``kind`` (to a destination not in ``skip``) is due: a read, so
    an idle poll never takes the write lock."""
    where = _due(kind, now)
    if skip:
        where.append(col(OutboxMessage.recipient).not_in(list(skip)))
    async with db.read() as session:
        return (
            await session.execute(sa.select(col(OutboxMessage.id)).where(*where).limit(1))
        ).first() is not None


def claimable(
    kind: Kind, now: datetime, per_destination: int | None = None, busy: Mapping[str, int] | None = None
) -> sa.Select[OutboxMessage]:
    """The due messages of ``kind`` a claim may take, oldest first (:func:`claim`).

    The due conditions stand in the outer query, not only in the ranking subquery. On
    PostgreSQL a row another sender claimed and committed after this statement's snapshot
    is locked anyway (it is no longer locked) and re-checked against its new version, but
    only against the outer query's conditions: a subquery's answer comes from the old
    snapshot. Without them the row, now claimed for the next minutes, would be taken twice
    (tests/jobs/test_outbox_claims.py).
    """
    where = _due(kind, now)
    select = sa.select(OutboxMessage).where(*where)
    if per_destination is not None:
        full = [d for d, n in (busy or {}).items() if n >= per_destination]
        if full:
            where.append(col(OutboxMessage.recipient).not_in(full))
        rank = (
            sa.func.row_number()
            .over(
                partition_by=col(OutboxMessage.recipient),
                order_by=(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id)),
            )
            .label("rank")
        )
        ranked = sa.select(col(OutboxMessage.id), rank).where(*where).subquery()
        # FOR UPDATE may not lock a window query's rows; the outer query locks by id.
        select = select.where(
            col(OutboxMessage.id).in_(sa.select(ranked.c.id).where(ranked.c.rank <= per_destination))
        )
    return select.order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))


async def claim(
    db: Database,
    now: datetime,
    limit: int,
    *,
    kind: Kind = Kind.MAIL,
    claim_seconds: float = CLAIM_SECONDS,
    per_destination: int | None = None,
    busy: Mapping[str, int] | None = None,
) -> list[Message]:
    """Take up to ``limit`` due messages of ``kind`` by pushing their next attempt ahead.

    ``FOR UPDATE SKIP LOCKED`` lets several senders on PostgreSQL take disjoint rows; on
    SQLite it renders nothing and the write transaction (BEGIN IMMEDIATE) serialises them.

    ``per_destination``: at most that many per destination, less what this sender already
    has in flight there (``busy``), oldest first. So a destination with a long backlog (a
    slow webhook endpoint) never fills a claim that others are waiting behind.
    """
    select = claimable(kind, now, per_destination, busy)
    async with db.write() as session:
        rows = list((await session.execute(select.limit(limit).with_for_update(skip_locked=True))).scalars())
        claimed = []
        taken: dict[str, int] = {}
        busy = busy or {}
        for row in rows:
            assert row.id is not None
            if per_destination is not None:
                n = taken.get(row.recipient, busy.get(row.recipient, 0))
                if n >= per_destination:
                    continue  # left as it is: due for the next claim
                taken[row.recipient] = n + 1
            row.next_attempt_at = now + timedelta(seconds=claim_seconds)
            claimed.append(
                Message(
                    id=row.id,
                    kind=Kind(row.kind),
                    key=row.message_id,
                    origin=row.sender,
                    destination=row.recipient,
                    payload=row.content,
                    attempts=row.attempts,
                    claimed_until=row.next_attempt_at,
                    created_at=row.created_at,
                )
            )
    return claimed


class Delivery:
    """One run's bookkeeping: renews claims and records each outcome in ``report``."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        report: DeliveryReport,
        backoff: Callable[[int], int] = backoff_seconds,
    ) -> None:
        self.db = db
        self.clock = clock
        self.report = report
        self._backoff = backoff

    async def renew(self, message: Message) -> bool:
        """Push the claim :data:`CLAIM_SECONDS` ahead if the row is still ours; else count it lost.

        A slow batch (a receiver timing out message after message) can outlast its claim,
        and another sender may then have taken the row: skip it rather than send it twice.
        """
        async with self.db.write() as session:
            renewed = await session.execute(
                sa.update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == message.id,
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                    col(OutboxMessage.next_attempt_at) == message.claimed_until,
                )
                .values(next_attempt_at=self.clock() + timedelta(seconds=CLAIM_SECONDS))
            )
        if renewed.rowcount == 1:  # type: ignore[attr-defined]
            return True
        self.report.lost += 1
        return False

    async def delivered(self, message: Message) -> None:
        await self._mark(
            message,
            status=OutboxStatus.SENT,
            attempts=message.attempts + 1,
            sent_at=self.clock(),
            last_error=None,
        )
        self.report.sent += 1

    async def retry(self, message: Message, error: str) -> None:
        """Not delivered this time; due again after the sender's backoff."""
        attempts = message.attempts + 1
        delay = self._backoff(attempts)
        log.warning(
            "%s %s to %s not delivered (attempt %d): %s; retrying in %d s",
            message.kind.value,
            message.key,
            message.destination,
            attempts,
            error,
            delay,
        )
        await self._mark(
            message,
            attempts=attempts,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
            last_error=error[:_ERROR_LIMIT],
        )
        self.report.retried += 1

    async def failed(self, message: Message, error: str) -> None:
        """Refused for good: kept, with the reason, and never tried again."""
        log.error(
            "%s %s to %s refused for good: %s", message.kind.value, message.key, message.destination, error
        )
        await self._mark(
            message,
            status=OutboxStatus.FAILED,
            attempts=message.attempts + 1,
            last_error=error[:_ERROR_LIMIT],
        )
        self.report.failed += 1

    async def logged(self, message: Message) -> None:
        """Written to the log instead of sent (nowhere to send it); it stays in the outbox."""
        await self._mark(message, status=OutboxStatus.LOGGED, attempts=message.attempts + 1)
        self.report.logged += 1

    async def _mark(self, message: Message, **values: Any) -> None:
        async with self.db.write() as session:
            await session.execute(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == message.id, col(OutboxMessage.status) == OutboxStatus.PENDING)
                .values(**values)
            )


async def deliver(
    db: Database, senders: Mapping[Kind, Sender], clock: Clock, *, limit: int = DELIVERY_BATCH
) -> DeliveryReport:
    """Claim up to ``limit`` due messages and hand each kind's batch to its sender.

    Kinds are sent one after another, each batch by its own sender, which decides its
    concurrency (mail: one SMTP connection, message after message). Only the kinds in
    ``senders`` are claimed: webhook deliveries have a job of their own.
    """
    report = DeliveryReport()
    for kind, sender in senders.items():
        batch = await claim(db, clock(), limit, kind=kind)
        if batch:
            await sender.send(batch, Delivery(db, clock, report, sender.backoff_seconds))
    return report


async def backlog(db: Database, now: datetime) -> dict[str, tuple[int, float]]:
    """Undelivered messages by kind: how many, and the age in seconds of the oldest (metrics).

    One indexed read (``status`` leads ``ix_outbox_status_due``); every row is mail today.
    """
    async with db.read() as session:
        count, oldest = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(col(OutboxMessage.created_at))).where(
                    col(OutboxMessage.status) == OutboxStatus.PENDING
                )
            )
        ).one()
    age = 0.0 if oldest is None else max(0.0, (now - _aware(oldest)).total_seconds())
    return {Kind.MAIL.value: (int(count), age)}


def _aware(value: datetime) -> datetime:
    # An aggregate skips the column's type on SQLite: naive UTC text comes back.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
