"""One expensive step per turn of the event loop: cheap work never waits behind a burst.

In each turn of its loop asyncio runs, in order, every callback that was ready when the turn
began. An uncached GraphQL execution on SQLite never suspends (its reads run on the loop's
own thread: :class:`server.infra.db.Database`), so 32 of them that become ready together make
one turn of ~100 ms, and whatever becomes ready meanwhile (an ingest batch's answer from the
group commit's thread, a cached page, a live event, ``/healthz``) waits for all of them, and
again for each further turn it needs: with 32 clients paging, ingest fell to ~1,000 events/s.

:class:`Turns` lets one entry start per turn; the others wait in a first-come, first-served
queue. A turn is then one execution plus the cheap work (ingest kept 30,000 events/s
alongside the same pages), and clients get their answers in the order they asked, so the
page's p99 falls too (bench/queue_page.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType


@dataclass
class TurnWaits:
    """Entries that waited for a later turn, and their waits' total, in seconds."""

    count: int = 0
    seconds: float = 0.0


class Turns:
    """An async context manager: at most one entry per turn of the running event loop.

    The first entry of a turn goes straight in; any later one waits for a turn of its own,
    in arrival order. An entry that is cancelled while it waits leaves the queue; one given
    its turn and cancelled before it runs passes the turn on all the same.
    """

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        # An entry has started in this turn: the next one waits for a later turn.
        self._taken = False
        self.waits = TurnWaits()

    @property
    def waiting(self) -> int:
        """Entries waiting for their turn now."""
        return len(self._waiters)

    async def __aenter__(self) -> None:
        if not self._taken and not self._waiters:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        start = time.perf_counter()
        try:
            await future
        finally:
            if not future.done():  # cancelled while waiting
                self._waiters.remove(future)
            self.waits.count += 1
            self.waits.seconds += time.perf_counter() - start

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _take(self) -> None:
        self._taken = True
        # Runs in the next turn, after the callbacks that became ready during this one.
        asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self._take()
                return
        self._taken = False
