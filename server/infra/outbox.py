"""The transactional outbox: messages written in the transaction that decided to send them,
delivered later by a scheduled job, at least once.

A message has a :class:`Kind` (today only mail), a stable key, a destination, a payload
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

The ``outbox_message`` table has no kind column yet: every row is mail (:data:`Kind.MAIL`),
its ``message_id`` the key, ``sender``/``recipient`` the envelope and ``content`` the payload.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
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


class Sender(Protocol):
    """Delivers the claimed messages of one kind and reports each one's outcome."""

    async def send(self, batch: Sequence[Message], delivery: Delivery) -> None:
        """Send ``batch``, calling :meth:`Delivery.renew` before each message and one
        outcome (delivered, retry, failed or logged) for each message it renewed."""
        ...

    def backoff_seconds(self, attempts: int) -> int:
        """How long to wait after ``attempts`` failed attempts before the next one."""
        ...


async def claim(db: Database, now: datetime, limit: int) -> list[Message]:
    """Take up to ``limit`` due messages for this sender by pushing their next attempt ahead.

    ``FOR UPDATE SKIP LOCKED`` lets several senders on PostgreSQL take disjoint rows; on
    SQLite it renders nothing and the write transaction (BEGIN IMMEDIATE) serialises them.
    """
    async with db.write() as session:
        rows = list(
            (
                await session.execute(
                    sa.select(OutboxMessage)
                    .where(
                        col(OutboxMessage.status) == OutboxStatus.PENDING,
                        col(OutboxMessage.next_attempt_at) <= now,
                    )
                    .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        claimed = []
        for row in rows:
            assert row.id is not None
            row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
            claimed.append(
                Message(
                    id=row.id,
                    kind=Kind.MAIL,
                    key=row.message_id,
                    origin=row.sender,
                    destination=row.recipient,
                    payload=row.content,
                    attempts=row.attempts,
                    claimed_until=row.next_attempt_at,
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
    concurrency (mail: one SMTP connection, message after message).
    """
    report = DeliveryReport()
    batches: dict[Kind, list[Message]] = {}
    for message in await claim(db, clock(), limit):
        batches.setdefault(message.kind, []).append(message)
    for kind, batch in batches.items():
        sender = senders.get(kind)
        if sender is None:
            unsent = Delivery(db, clock, report)
            for message in batch:
                await unsent.retry(message, f"no sender for {kind.value} in this process")
            continue
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
