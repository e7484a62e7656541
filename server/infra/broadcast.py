"""The broadcaster: committed queue events to this process's live subscribers.

:meth:`server.infra.db.Database.write` hands a transaction's recorded events
(:mod:`server.domain.events`) to the broadcaster twice: :meth:`Broadcaster.stage` inside
the transaction (a PostgreSQL implementation sends NOTIFY there, which PostgreSQL delivers
only on commit and in commit order) and :meth:`Broadcaster.committed` after the commit (the
in-memory implementation delivers there). Nothing is delivered for a transaction that
rolled back.

Each subscriber owns a bounded queue. Publishing never waits: a subscriber whose queue is
full is marked overflowed and dropped, and its stream ends with :class:`SubscriberOverflow`
so the client can resync by query. One slow subscriber never delays another.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.events import QueueEvent

log = logging.getLogger(__name__)

# Events a subscriber may have waiting before it is dropped. A burst of this size is one
# large ingest group or a bulk action of 500 ids twice over; a client further behind than
# that resyncs by query faster than it could replay.
DEFAULT_SUBSCRIBER_QUEUE = 1000

#: Why a subscriber's stream was cut, as its client is told (a websocket close reason,
#: at most 123 bytes). Either way its client resyncs by query, then subscribes again.
FELL_BEHIND = "fell behind; resync by query"
LOST_EVENT_STREAM = "the server lost its connection to the database's event stream; resync by query"


class SubscriberOverflow(Exception):
    """The subscriber's stream was cut (it fell too far behind, or events may have been
    lost upstream); resync by query. ``reason`` says which, for the client."""

    def __init__(self, message: str, reason: str = FELL_BEHIND) -> None:
        super().__init__(message)
        self.reason = reason


class Subscription:
    """One listener's bounded stream of events for one account.

    Iterate it for events one at a time, or call :meth:`next_batch` to take everything
    already waiting. The stream ends when :meth:`close` is called and raises
    :class:`SubscriberOverflow` once the broker dropped it for falling behind. Either way it
    is unsubscribed when iteration stops, so a consumer that goes away leaves nothing behind.
    """

    def __init__(self, broker: MemoryBroker, account_id: int, maxsize: int) -> None:
        self._broker = broker
        self.account_id = account_id
        # ``None`` only wakes a reader after close; it is never counted as an event.
        self._queue: asyncio.Queue[QueueEvent | None] = asyncio.Queue(maxsize)
        self.maxsize = maxsize
        self.overflowed = False
        self.drop_reason = FELL_BEHIND
        self.closed = False

    def offer(self, event: QueueEvent) -> bool:
        """Deliver without waiting; ``False`` (and the stream ends) if the queue is full."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.drop()
            return False
        return True

    def drop(self, reason: str = FELL_BEHIND) -> None:
        """End the stream for its reader to resync: it gets :class:`SubscriberOverflow`."""
        self.overflowed = True
        self.drop_reason = reason
        self._end()

    def _overflow(self) -> SubscriberOverflow:
        if self.drop_reason == FELL_BEHIND:
            message = f"subscriber for account {self.account_id} fell more than {self.maxsize} events behind"
        else:
            message = f"subscriber for account {self.account_id} dropped: {self.drop_reason}"
        return SubscriberOverflow(message, self.drop_reason)

    def _end(self) -> None:
        self.closed = True
        # Wake a waiting reader. A reader is waiting only when the queue is empty, so the
        # marker always fits then; when it does not, the reader is busy and will see
        # ``closed``/``overflowed`` at its next turn.
        if not self._queue.full():
            self._queue.put_nowait(None)

    def close(self) -> None:
        if not self.closed:
            self._end()
        self._broker.unsubscribe(self)

    async def next_batch(self, limit: int = 100) -> list[QueueEvent]:
        """Wait for the next event and return it with up to ``limit - 1`` already waiting.

        An empty list means the stream ended normally; an overflow raises.
        """
        batch: list[QueueEvent] = []
        while not batch:
            if self.overflowed:
                raise self._overflow()
            if self.closed and self._queue.empty():
                return []
            first = await self._queue.get()
            if first is not None:
                batch.append(first)
            while len(batch) < limit and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is not None:
                    batch.append(more)
        if self.overflowed:
            # Events queued before the overflow are still a gap-free prefix, but the client
            # must resync anyway: end now rather than replay up to ``maxsize`` stale events.
            raise self._overflow()
        return batch

    def __aiter__(self) -> AsyncIterator[QueueEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[QueueEvent]:
        try:
            while batch := await self.next_batch():
                for event in batch:
                    yield event
        finally:
            self.close()


class MemoryBroker:
    """Fans events out to this process's subscribers, per account."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._changed = asyncio.Condition()
        self._notifiers: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick, never raising) after every delivery of committed events."""
        self._listeners.append(callback)

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

    def drop_all(self, reason: str = LOST_EVENT_STREAM) -> int:
        """Drop every subscriber, telling it ``reason``; returns how many.

        For an event source that may have lost events (a PostgreSQL listener that
        reconnected): every client is told to resync rather than silently miss changes.
        """
        subs = [sub for group in self._subscribers.values() for sub in group]
        for sub in subs:
            sub.drop(reason)
            self.unsubscribe(sub)
        return len(subs)

    def subscriber_count(self, account_id: int | None = None) -> int:
        if account_id is None:
            return sum(len(s) for s in self._subscribers.values())
        return len(self._subscribers.get(account_id, ()))

    async def wait_for_subscribers(self, account_id: int, count: int, *, exactly: bool = False) -> None:
        """Wait until ``account_id`` has at least (or ``exactly``) ``count`` subscribers.

        For tests and benchmarks: act only once the server registered a subscription, or
        (``count=0, exactly=True``) once closed ones are gone.
        """

        def reached() -> bool:
            n = self.subscriber_count(account_id)
            return n == count if exactly else n >= count

        async with self._changed:
            await self._changed.wait_for(reached)

    def _notify_changed(self) -> None:
        # subscribe/unsubscribe are synchronous (called from finally blocks and from
        # delivery); the condition can only be notified from a coroutine.
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
        """Offer every event to its account's subscribers, in order, without waiting."""
        for event in events:
            for sub in list(self._subscribers.get(event.account_id, ())):
                if not sub.offer(event):
                    log.warning(
                        "dropped a subscriber of account %s: it fell %d events behind",
                        event.account_id,
                        sub.maxsize,
                    )
                    self.unsubscribe(sub)
        for callback in self._listeners:
            callback()


class Broadcaster(Protocol):
    """Where committed queue events go, and where subscribers of this process listen.

    Implementations: :class:`MemoryBroadcaster` (one process, the default) and a PostgreSQL
    LISTEN/NOTIFY one for several processes (``PLM_BROADCAST_URL=postgres://…``). Both feed
    subscribers through :attr:`broker`, so bounded queues, overflow and per-account
    isolation are the same whichever carries the events.

    Contract for an implementation:

    * :meth:`stage` runs inside the write transaction, before commit, with every event the
      transaction recorded, in order. It may write through ``session`` (NOTIFY); it must not
      deliver locally, because the transaction may still roll back.
    * :meth:`committed` runs after the commit succeeded, synchronously, in commit order per
      account (SQLite: still under the process's write lock). It must not block or raise:
      the writer's action has already happened.
    * Deliver each committed event once to :attr:`broker` (``broker.deliver``), in commit
      order per account. A PostgreSQL implementation delivers what its LISTEN connection
      receives, including this process's own NOTIFYs, and so does nothing in ``committed``.
    """

    broker: MemoryBroker

    async def start(self) -> None:
        """Called once in the app's lifespan before requests are served."""

    async def stop(self) -> None:
        """Called once at shutdown."""

    async def stage(self, session: AsyncSession, events: Sequence[QueueEvent]) -> None:
        """Called inside the transaction, before commit."""

    def committed(self, events: Sequence[QueueEvent]) -> None:
        """Called after the transaction committed."""

    def subscribe(self, account_id: int, maxsize: int = DEFAULT_SUBSCRIBER_QUEUE) -> Subscription:
        """A new bounded stream of ``account_id``'s events (``broker.subscribe``)."""
        ...


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
