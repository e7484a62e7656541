"""Rate limits per admin token, per ingest key and per client address (the ``limits`` library).

Counts live in this process's memory (``limits``' asyncio memory storage), so a deployment of
N processes behind a load balancer allows up to N times each limit in all; the limits are
about one caller not crowding out the others on a process, not about billing.

Each surface has its rates (``PLM_RATE_LIMIT_*``, e.g. ``50/second;1000/minute``), counted in
fixed windows that start at a key's first hit: simple, O(1) per hit, and the ``Retry-After``
is exact (the end of the window that refused). A hit that any rate refuses is counted by
none of the others, so a caller that waits as told always gets through.

Keys are only ever ids the server issued (an admin id, an account id) or a client address,
never a credential a caller made up: memory stays bounded by what exists.
"""

from __future__ import annotations

import enum
import math
import time

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

from server.infra.settings import Settings, parse_limits


class Surface(str, enum.Enum):
    GRAPHQL = "graphql"  # per admin (an admin has one token)
    INGEST = "ingest"  # per account (an account's ingest key)
    UNAUTHENTICATED = "unauthenticated"  # per client address, requests that fail to authenticate


class RateLimits:
    """The limiter of one app (one process)."""

    def __init__(self, settings: Settings) -> None:
        self._storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._rates: dict[Surface, list[RateLimitItem]] = {
            Surface.GRAPHQL: parse_limits(settings.rate_limit_graphql),
            Surface.INGEST: parse_limits(settings.rate_limit_ingest),
            Surface.UNAUTHENTICATED: parse_limits(settings.rate_limit_unauthenticated),
        }

    async def hit(self, surface: Surface, key: str) -> int | None:
        """Count one request for ``key``; ``None`` if allowed, else the seconds to wait.

        The memory storage never suspends here (no lock is contended on one event loop), so
        the hits and any that are given back happen as one step.
        """
        rates = self._rates[surface]
        # Each rate's hit (one storage operation each, not a test and then a hit); when one
        # refuses, the others give theirs back. A rate that refused keeps its count, past its
        # limit in a window that ends all the same: nothing it answers changes.
        refused: list[RateLimitItem] = []
        counted: list[RateLimitItem] = []
        for rate in rates:
            (counted if await self._limiter.hit(rate, surface.value, key) else refused).append(rate)
        if not refused:
            return None
        for rate in counted:
            await self._storage.decr(rate.key_for(surface.value, key))
        now = time.time()
        waits = [
            (await self._limiter.get_window_stats(r, surface.value, key)).reset_time - now for r in refused
        ]
        return max(1, math.ceil(max(waits)))
