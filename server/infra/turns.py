"""A few expensive steps per turn of the event loop: cheap work never waits behind a burst.

In each turn of its loop asyncio runs, in order, every callback that was ready when the turn
began. An uncached GraphQL execution on SQLite never suspends (its reads run on the loop's
own thread: :class:`server.infra.db.Database`), so 32 of them that become ready together make
one turn of ~100 ms, and whatever becomes ready meanwhile (an ingest batch's answer from the
group commit's thread, a cached page, a live event, ``/healthz``) waits for all of them, and
again for each further turn it needs: with 32 clients paging, ingest fell to ~1,000 events/s.

:class:`Turns` lets as many entries start per turn as fit in a time budget (7 ms by default:
five 1.3 ms pages, one heavier execution); the others wait in a first-come, first-served
queue. A turn is then a few executions plus the cheap work, and clients get their answers in
the order they asked, so the page's p99 falls too. The budget trades the two loads when both
saturate the process (bench/queue_page.py's mixed variant, 32 clients paging while 8 agents
post 100-event batches, SQLite). An agent's batch waits about four turns from one answer to
its next commit (its answer, the request's resumption, the next request's start, the group
commit's turn), so ingest follows the turn's length, and the pages the CPU ingest leaves
them. Measured with SQLite reads through the synchronous driver: 2 ms gave ingest ~47,000
events/s and the pages ~380 req/s (p99 ~117 ms); 4 ms, ~39,000 and ~440 (p99 ~100 ms);
6 ms, ~27,000 and ~545-595 (p99 68-75 ms); 7 ms, ~23,000 and ~580-615; 8 ms, ~20,000 and
~580-630 (p99 59-89 ms). In the whole bench (the mixed load after the other targets) 6 ms
gave ingest ~29,000 and the pages 420-475 req/s (p99 87-124 ms); 7 ms, ingest ~25,000 and
the pages 426-590 req/s (p99 68-121 ms).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass
class TurnWaits:
    """Entries that waited for a later turn, and their waits' total, in seconds."""

    count: int = 0
    seconds: float = 0.0


# How long a turn of the loop may spend on uncached executions by default: how long cheap
# work that became ready meanwhile (an ingest answer, a cached page, /healthz) waits at
# most, beyond the last execution's own time (PLM_GRAPHQL_TURN_BUDGET_MS).
TURN_BUDGET = 0.007
# However cheap the entries, at most this many start in one turn.
MAX_PER_TURN = 8

# When the current task's entry went in (a task is in one entry at a time), for its duration.
_ENTERED: contextvars.ContextVar[float] = contextvars.ContextVar("turn_entered")


class Turns:
    """An async context manager: at most :attr:`per_turn` entries per turn of the running loop.

    An entry goes straight in while its turn has room and nobody waits; any other waits for
    a later turn, in arrival order. :attr:`per_turn` is how many entries of the recent mean
    duration fit in ``budget`` seconds (at least one): cheap entries share a turn, an entry
    longer than the budget has one to itself. A ``budget`` of 0 lets one entry start per
    turn. An entry that is cancelled while it waits leaves the queue; one given its turn and
    cancelled before it runs passes the turn on all the same.
    """

    def __init__(self, budget: float = TURN_BUDGET, clock: Callable[[], float] = time.perf_counter) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._budget = budget
        self._clock = clock
        # Entries started in this turn, and whether the next turn's hand-out is scheduled.
        self._started = 0
        self._scheduled = False
        # The entries' mean duration (an exponentially weighted one), once one has ended.
        self._mean: float | None = None
        self.waits = TurnWaits()

    @property
    def waiting(self) -> int:
        """Entries waiting for their turn now."""
        return len(self._waiters)

    @property
    def per_turn(self) -> int:
        """How many entries may start in one turn."""
        if self._budget <= 0 or self._mean is None:
            return 1
        if self._mean <= 0:
            return MAX_PER_TURN
        return max(1, min(MAX_PER_TURN, int(self._budget / self._mean)))

    async def __aenter__(self) -> None:
        if self._started < self.per_turn and not self._waiters:
            self._start()
        else:
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
        _ENTERED.set(self._clock())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        took = self._clock() - _ENTERED.get()
        self._mean = took if self._mean is None else self._mean + 0.1 * (took - self._mean)
        return None

    def _start(self) -> None:
        self._started += 1
        if not self._scheduled:
            self._scheduled = True
            # Runs in the next turn, after the callbacks that became ready during this one.
            asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        self._scheduled = False
        self._started = 0
        room = self.per_turn
        while self._waiters and self._started < room:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self._start()
