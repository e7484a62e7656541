"""Group commit for ingestion: concurrent batches share one transaction and one fsync.

SQLite with ``synchronous=FULL`` pays a WAL fsync per commit and has one writer at a time,
so committing each 100-event batch alone caps throughput at the disk's commit rate. Here
requests queue their batch and wait; one writer takes everything queued so far, stores it
with :func:`server.domain.activity.ingestion.ingest_many` in one transaction, and answers
every waiting request only after that commit, so an acknowledged batch is durable exactly
as before. At low load a group is a single batch and nothing waits longer than its own
commit.

The writer runs on a thread of its own with its own event loop and write engine
(:class:`server.infra.db.ThreadWriter`). A group's transaction is a dozen statements, each
an ``await``; on the main loop every one of them waited for a turn behind whatever else the
loop was running (GraphQL pages, CPU-bound), and the group held SQLite's write lock all that
time: under a busy API ingestion fell from ~60,000 to ~2,000 events/s. On its own loop the
writer's turns come as soon as the database answers. Requests hand their batch over under a
mutex and get their answer back on the main loop (``call_soon_threadsafe``); the queue
events a group commits are delivered there too, in commit order. PostgreSQL has no
process-wide write lock, but a group's round trips waited for the main loop's turns all the
same; its writer is the same thread, with asyncpg connections made on the writer's loop.

A group that fails on its data is retried batch by batch, so one bad batch fails alone. A
group that fails because the database is unavailable (locked past the busy timeout, no
connection) fails whole at once: retrying its batches one by one would only hold the single
writer up for every other request.

While batches arrive together (the last group held more than one), the writer waits a
moment before taking the next group, as PostgreSQL's ``commit_delay`` does: the requests the
last commit answered send their next batch meanwhile and share the next commit instead of
paying for one of their own. It waits until as many batches as the last group held have
come since its answers went out (or a whole group is queued), at most ``commit_delay`` (the
server's ``PLM_INGEST_COMMIT_DELAY_MS``). A group's statements cost about the same for one
batch as for a dozen: under 16 concurrent new agents, groups of 8 became groups of 14-16
and admissions/s rose by a quarter or more, each answered sooner (bench/admission.py). A
lone batch (the last group was one batch, or nothing came during the wait) is taken at once.

The queue is bounded (:data:`MAX_QUEUED_EVENTS`, :data:`MAX_QUEUED_BATCHES`): while the
database is slow or gone, requests beyond it are refused at once (:class:`Overloaded`, a
503) instead of piling up in memory. A request that gives up (its deadline, or its client
left) takes its batch out of the queue if the writer has not taken it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from server.domain.activity import ingestion
from server.domain.activity.batch import Batch
from server.domain.activity.ingestion import IngestResult
from server.infra.clock import Clock
from server.infra.db import Database, ThreadWriter, is_unavailable

log = logging.getLogger(__name__)

MAX_GROUP_BATCHES = 128
MAX_GROUP_EVENTS = 20_000
# About two seconds of work at full speed; memory stays bounded while the database is away.
MAX_QUEUED_BATCHES = 2_000
MAX_QUEUED_EVENTS = 50_000
# While it waits for more batches (the commit delay), the writer looks every this often.
LINGER_STEP_SECONDS = 0.0005

THREAD_NAME = "ingest-group-commit"

_T = TypeVar("_T")


class ShuttingDown(RuntimeError):
    """The server stopped before the batch was stored; the agent should retry it."""


class Overloaded(RuntimeError):
    """The queue of batches waiting for the database is full; the agent should retry later."""


@dataclass(eq=False, slots=True)
class _Waiting:
    """A queued batch and the main-loop future its request awaits (compared by identity)."""

    account_id: int
    batch: Batch
    future: asyncio.Future[IngestResult]
    # Set by the writer under the mutex when it takes the batch out of the queue.
    taken: bool = False


def _shutting_down() -> ShuttingDown:
    return ShuttingDown("the server is shutting down; retry the batch")


class IngestCommitter:
    """The ingest queue (main loop side) and its group writer (its own thread, started on
    the first batch and stopped by :meth:`stop`)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_queued_batches: int = MAX_QUEUED_BATCHES,
        max_queued_events: int = MAX_QUEUED_EVENTS,
        on_group: Callable[[int], None] | None = None,
        commit_delay: float = 0.0,
    ) -> None:
        self._db = db
        self.commit_delay = commit_delay
        # Whether the writer is waiting for more batches before taking a group (tests).
        self.lingering = False
        # Batches queued since the start, and their number when the last group was answered.
        self._arrived = 0
        self._arrived_when_answered = 0
        # Told the size of every group committed, on the main loop (metrics).
        self._on_group = on_group
        # Read on the writer's thread as each group is stored (a FakeClock is only read there).
        self._clock = clock
        self._max_batches = max_queued_batches
        self._max_events = max_queued_events
        # The queue is shared with the writer's thread: every access holds the mutex.
        self._mutex = threading.Lock()
        self._queue: deque[_Waiting] = deque()
        self._queued_events = 0
        # Batches in the group being committed now.
        self.in_flight = 0
        self._writer: _GroupWriter | None = None

    async def submit(self, account_id: int, batch: Batch) -> IngestResult:
        """Store ``batch``; returns once it is committed (or raises what the commit raised)."""
        loop = asyncio.get_running_loop()
        writer = self._writer
        if writer is None or not writer.is_alive():
            writer = self._writer = _GroupWriter(self, loop)
            writer.start()
        item = _Waiting(account_id, batch, loop.create_future())
        with self._mutex:
            if (
                len(self._queue) >= self._max_batches
                or self._queued_events + len(batch.events) > self._max_events
            ):
                raise Overloaded("too many batches are waiting for the database; retry the batch")
            idle = not self._queue
            self._queue.append(item)
            self._queued_events += len(batch.events)
            self._arrived += 1
        if idle:
            # Otherwise the writer has batches to take yet and will find this one with them.
            writer.wake()
        try:
            return await item.future
        finally:
            # Given up (a deadline, a client gone): a batch not yet taken is never stored.
            item.future.cancel()
            if not item.taken:
                with self._mutex:
                    if not item.taken:
                        self._queue.remove(item)
                        self._queued_events -= len(batch.events)

    @property
    def queued(self) -> int:
        """Batches waiting for the writer."""
        return len(self._queue)

    @property
    def running(self) -> bool:
        """Whether the writer's thread is running."""
        return self._writer is not None and self._writer.is_alive()

    async def stop(self) -> None:
        """Stop the writer, wait for its thread to end and its engine to be disposed, and fail
        the batches still queued with :class:`ShuttingDown`.

        A group waiting for the write lock fails with :class:`ShuttingDown` too; a group whose
        statements are running is finished and answered as it turns out (on SQLite they block
        the writer's thread, which cannot be interrupted there).
        """
        while (writer := self._writer) is not None:  # one more if a batch came in meanwhile
            self._writer = None
            await writer.stop()
        with self._mutex:
            waiting = list(self._queue)
            self._queue.clear()
            self._queued_events = 0
            for item in waiting:
                item.taken = True
        for item in waiting:
            if not item.future.done():
                item.future.set_exception(_shutting_down())

    # On the writer's thread, from here on.

    def _take_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        events = 0
        with self._mutex:
            while self._queue and len(group) < MAX_GROUP_BATCHES:
                n = len(self._queue[0].batch.events)
                if group and events + n > MAX_GROUP_EVENTS:
                    break
                item = self._queue.popleft()
                item.taken = True
                group.append(item)
                self._queued_events -= n
                events += n
        return group

    async def _linger(self, answered: int) -> None:
        """Wait, at most the commit delay, until ``answered`` batches (the last group's) have
        come since its answers went out, or a whole group is queued."""
        deadline = time.monotonic() + self.commit_delay
        self.lingering = True
        try:
            # Polled: a wake-up per queued batch (an Event set across threads) costs the main
            # loop more than this, and it measured fewer batches per group.
            while (  # noqa: ASYNC110
                self._arrived - self._arrived_when_answered < answered
                and len(self._queue) < MAX_GROUP_BATCHES
                and self._queued_events < MAX_GROUP_EVENTS
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(LINGER_STEP_SECONDS)
        finally:
            self.lingering = False

    async def _run(self, writer: ThreadWriter, wake: asyncio.Event, home: asyncio.AbstractEventLoop) -> None:
        last = 0  # batches in the last group
        while True:
            await wake.wait()
            wake.clear()
            while True:
                if last > 1 and self.commit_delay > 0:
                    await self._linger(last)
                group = self._take_group()
                if not group:
                    last = 0  # nothing came: the next batch is a lone one
                    break
                last = len(group)
                self.in_flight = len(group)
                try:
                    await self._commit(writer, group, home)
                finally:
                    self.in_flight = 0

    async def _commit(
        self, writer: ThreadWriter, group: list[_Waiting], home: asyncio.AbstractEventLoop
    ) -> None:
        try:
            async with writer.write() as session:
                results = await ingestion.ingest_many(
                    session, [(item.account_id, item.batch) for item in group], self._clock()
                )
        except asyncio.CancelledError:
            self._reply(home, self._fail, group, _shutting_down())
            raise
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("the database is unavailable for a group of %d batches: %s", len(group), exc)
                self._reply(home, self._fail, group, exc)
                return
            if len(group) > 1:
                log.warning("a group of %d batches failed (%s); retrying them one by one", len(group), exc)
                for item in group:
                    await self._commit(writer, [item], home)
                return
            self._reply(home, self._fail, group, exc)
            return
        self._reply(home, self._succeed, group, results)

    def _reply(
        self,
        home: asyncio.AbstractEventLoop,
        callback: Callable[[list[_Waiting], _T], None],
        group: list[_Waiting],
        outcome: _T,
    ) -> None:
        """Answer ``group`` on the main loop; batches arriving from now on are its requests' next."""
        self._arrived_when_answered = self._arrived
        with contextlib.suppress(RuntimeError):  # the main loop is closed: nobody waits any more
            home.call_soon_threadsafe(callback, group, outcome)

    # Back on the main loop.

    def _succeed(self, group: list[_Waiting], results: Sequence[IngestResult]) -> None:
        if self._on_group is not None:
            self._on_group(len(group))
        for item, result in zip(group, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    @staticmethod
    def _fail(group: list[_Waiting], exc: BaseException) -> None:
        for item in group:
            if not item.future.done():
                item.future.set_exception(exc)


class _GroupWriter(threading.Thread):
    """The writer's thread: an event loop of its own running :meth:`IngestCommitter._run`."""

    def __init__(self, committer: IngestCommitter, home: asyncio.AbstractEventLoop) -> None:
        super().__init__(name=THREAD_NAME, daemon=True)
        self._committer = committer
        self._home = home
        self._loop = asyncio.new_event_loop()
        # Set from the main loop through the writer's loop (call_soon_threadsafe), when a
        # batch comes into an empty queue; set at first, for batches left by a writer that died.
        self._wake = asyncio.Event()
        self._wake.set()
        self._task: asyncio.Task[None] | None = None
        # Set on the main loop once the thread's loop is closed and its engine disposed.
        self._ended: asyncio.Future[None] = home.create_future()

    def run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            self._task = loop.create_task(self._main(), name=THREAD_NAME)
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        except Exception:
            log.exception("the ingest group writer stopped")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                with contextlib.suppress(RuntimeError):
                    self._home.call_soon_threadsafe(_settle, self._ended)

    async def _main(self) -> None:
        writer = ThreadWriter(self._committer._db, self._home)
        try:
            await self._committer._run(writer, self._wake, self._home)
        finally:
            await writer.dispose()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the writer stopped
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Cancel the writer, then wait (without blocking the main loop) for its thread to end."""
        with contextlib.suppress(RuntimeError):  # its loop is closed: the thread is ending
            self._loop.call_soon_threadsafe(self._cancel)
        await self._ended
        self.join()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
