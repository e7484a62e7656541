"""Group commit for ingestion: concurrent batches share one transaction and one fsync.

SQLite with ``synchronous=FULL`` pays a WAL fsync per commit and has one writer at a time,
so committing each 100-event batch alone caps throughput at the disk's commit rate. Here
requests queue their batch and wait; one writer task takes everything queued so far, stores
it with :func:`server.activity.ingest_many` in one transaction, and answers every waiting
request only after that commit, so an acknowledged batch is durable exactly as before. At
low load a group is a single batch and nothing waits longer than its own commit.

A group that fails on its data is retried batch by batch, so one bad batch fails alone. A
group that fails because the database is unavailable (locked past the busy timeout, no
connection) fails whole at once: retrying its batches one by one would only hold the single
writer up for every other request.

The queue is bounded (:data:`MAX_QUEUED_EVENTS`, :data:`MAX_QUEUED_BATCHES`): while the
database is slow or gone, requests beyond it are refused at once (:class:`Overloaded`, a
503) instead of piling up in memory. A request that gives up (its deadline, or its client
left) takes its batch out of the queue if the writer has not taken it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch
from server.domain.activity.ingestion import IngestResult
from server.infra.clock import Clock
from server.infra.db import Database, is_unavailable

log = logging.getLogger(__name__)

MAX_GROUP_BATCHES = 128
MAX_GROUP_EVENTS = 20_000
# About two seconds of work at full speed; memory stays bounded while the database is away.
MAX_QUEUED_BATCHES = 2_000
MAX_QUEUED_EVENTS = 50_000

_Item = tuple[int, Batch, "asyncio.Future[IngestResult]"]


class ShuttingDown(RuntimeError):
    """The server stopped before the batch was stored; the agent should retry it."""


class Overloaded(RuntimeError):
    """The queue of batches waiting for the database is full; the agent should retry later."""


class IngestCommitter:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_queued_batches: int = MAX_QUEUED_BATCHES,
        max_queued_events: int = MAX_QUEUED_EVENTS,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        self._db = db
        # Told the size of every group committed (metrics).
        self._on_group = on_group
        self._clock = clock
        self._max_batches = max_queued_batches
        self._max_events = max_queued_events
        self._queue: deque[_Item] = deque()
        self._queued_events = 0
        # Batches in the group being committed now.
        self.in_flight = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, account_id: int, batch: Batch) -> IngestResult:
        """Store ``batch``; returns once it is committed (or raises what the commit raised)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="ingest-group-commit")
        assert self._wake is not None
        if (
            len(self._queue) >= self._max_batches
            or self._queued_events + len(batch.events) > self._max_events
        ):
            raise Overloaded("too many batches are waiting for the database; retry the batch")
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._queue.append((account_id, batch, future))
        self._queued_events += len(batch.events)
        self._wake.set()
        try:
            return await future
        finally:
            # Given up (a deadline, a client gone): a batch not yet taken is never stored.
            future.cancel()

    @property
    def queued(self) -> int:
        """Batches waiting for the writer."""
        return len(self._queue)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            _, batch, future = self._queue.popleft()
            self._queued_events -= len(batch.events)
            if not future.done():
                future.set_exception(ShuttingDown("the server is shutting down; retry the batch"))

    def _take_group(self) -> list[_Item]:
        group: list[_Item] = []
        events = 0
        while self._queue and len(group) < MAX_GROUP_BATCHES:
            n = len(self._queue[0][1].events)
            if group and events + n > MAX_GROUP_EVENTS:
                break
            item = self._queue.popleft()
            self._queued_events -= n
            if item[2].done():  # its request gave up while it waited
                continue
            group.append(item)
            events += n
        return group

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group = self._take_group()
                if group:
                    self.in_flight = len(group)
                    try:
                        await self._commit(group)
                    finally:
                        self.in_flight = 0

    async def _commit(self, group: list[_Item]) -> None:
        try:
            async with self._db.write() as session:
                results = await ingestion.ingest_many(session, [(a, b) for a, b, _ in group], self._clock())
        except asyncio.CancelledError:
            for _, _, future in group:
                if not future.done():
                    future.set_exception(ShuttingDown("the server is shutting down; retry the batch"))
            raise
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("the database is unavailable for a group of %d batches: %s", len(group), exc)
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                return
            if len(group) > 1:
                log.warning("a group of %d batches failed (%s); retrying them one by one", len(group), exc)
                for item in group:
                    await self._commit([item])
                return
            future = group[0][2]
            if not future.done():
                future.set_exception(exc)
            return
        if self._on_group is not None:
            self._on_group(len(group))
        for (_, _, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)
