"""Queue events and the broadcaster that delivers them to live subscribers.

The domain layer records one :class:`QueueEvent` per affected user on the session
(:func:`record`); :meth:`server.db.Database.write` hands them to the broadcaster, which
sees them twice: :meth:`Broadcaster.stage` inside the transaction (a PostgreSQL
implementation sends NOTIFY there, which PostgreSQL delivers only on commit and in commit
order) and :meth:`Broadcaster.committed` after the commit (the in-memory implementation
delivers there). Nothing is delivered for a transaction that rolled back.

Each subscriber owns a bounded queue. Publishing never waits: a subscriber whose queue is
full is marked overflowed and dropped, and its stream ends with :class:`SubscriberOverflow`
so the client can resync by query. One slow subscriber never delays another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.models import QueueAction

log = logging.getLogger(__name__)

DEFAULT_SUBSCRIBER_QUEUE = 1000


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """The account's license usage after a change."""

    account_id: int
    license_limit: int
    licenses_used: int
    pending_count: int
    manual_review: bool


@dataclass(frozen=True, slots=True)
class QueueEvent:
    action: QueueAction
    account_id: int
    user_id: int
    at: datetime
    actor_id: int | None
    usage: AccountUsage
    # The account's queue version after the change: a client that missed events compares.
    queue_version: int


def record(session: AsyncSession, events: Sequence[QueueEvent]) -> None:
    """Queue ``events`` for publication when ``session``'s transaction commits."""
    session.info.setdefault("queue_events", []).extend(events)


def take_recorded(session: AsyncSession) -> list[QueueEvent]:
    events: list[QueueEvent] = session.info.pop("queue_events", [])
    return events


class SubscriberOverflow(Exception):
    """The subscriber fell too far behind and was dropped; resync by query."""


class Subscription:
    """One listener's bounded stream of events for one account."""

    def __init__(self, broker: MemoryBroker, account_id: int, maxsize: int) -> None:
        self._broker = broker
        self.account_id = account_id
        self._queue: asyncio.Queue[QueueEvent | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, event: QueueEvent) -> bool:
        """Deliver without waiting; ``False`` (and the stream ends) if the queue is full."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._end()
            return False
        return True

    def _end(self) -> None:
        self.closed = True
        # Wake a waiting reader; if the queue is full it will find ``overflowed`` set
        # once it has drained what it can.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def close(self) -> None:
        if not self.closed:
            self._end()
        self._broker.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[QueueEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[QueueEvent]:
        try:
            while True:
                if self.overflowed:
                    raise SubscriberOverflow(
                        f"subscriber for account {self.account_id} fell more than "
                        f"{self._queue.maxsize} events behind"
                    )
                event = await self._queue.get()
                if event is None:
                    if self.overflowed:
                        continue
                    return
                yield event
        finally:
            self.close()


class MemoryBroker:
    """Fans events out to this process's subscribers, per account."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._changed = asyncio.Condition()
        self._notifiers: set[asyncio.Task[None]] = set()

    def subscribe(self, account_id: int, maxsize: int = DEFAULT_SUBSCRIBER_QUEUE) -> Subscription:
        sub = Subscription(self, account_id, maxsize)
        self._subscribers[account_id].add(sub)
        self._notify_changed()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.account_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.account_id]
            self._notify_changed()

    def subscriber_count(self, account_id: int | None = None) -> int:
        if account_id is None:
            return sum(len(s) for s in self._subscribers.values())
        return len(self._subscribers.get(account_id, ()))

    async def wait_for_subscribers(self, account_id: int, count: int) -> None:
        """Wait until ``account_id`` has at least ``count`` subscribers (tests, benchmarks)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.subscriber_count(account_id) >= count)

    def _notify_changed(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(notify())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    def deliver(self, events: Sequence[QueueEvent]) -> None:
        for event in events:
            for sub in list(self._subscribers.get(event.account_id, ())):
                if not sub.offer(event):
                    log.warning(
                        "dropped a subscriber of account %s: it fell behind", event.account_id
                    )
                    self.unsubscribe(sub)


class Broadcaster(Protocol):
    """Where committed queue events go. Implementations: memory (one process), PostgreSQL."""

    broker: MemoryBroker

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def stage(self, session: AsyncSession, events: Sequence[QueueEvent]) -> None:
        """Called inside the transaction, before commit."""

    def committed(self, events: Sequence[QueueEvent]) -> None:
        """Called after the transaction committed."""

    def subscribe(self, account_id: int, maxsize: int = DEFAULT_SUBSCRIBER_QUEUE) -> Subscription: ...


class MemoryBroadcaster:
    """The default: subscribers in this process hear this process's commits."""

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def stage(self, session: AsyncSession, events: Sequence[QueueEvent]) -> None:
        return None

    def committed(self, events: Sequence[QueueEvent]) -> None:
        self.broker.deliver(events)

    def subscribe(self, account_id: int, maxsize: int = DEFAULT_SUBSCRIBER_QUEUE) -> Subscription:
        return self.broker.subscribe(account_id, maxsize)
