"""Rate limits per admin token, per ingest key and per client address (the ``limits`` library).

Counts live in this process's memory (``limits``' asyncio memory storage), so a deployment of
N processes behind a load balancer allows up to N times each limit in all; the limits are
about one caller not crowding out the others on a process, not about billing.

Each surface has its rates (``PLM_RATE_LIMIT_*``, e.g. ``50/second;1000/minute``), counted in
fixed windows that start at a key's first hit: simple, O(1) per hit, and the ``Retry-After``
is exact (the end of the window that refused). A hit that any rate refuses is counted by
none, so a caller that waits as told always gets through.

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
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._rates: dict[Surface, list[RateLimitItem]] = {
            Surface.GRAPHQL: parse_limits(settings.rate_limit_graphql),
            Surface.INGEST: parse_limits(settings.rate_limit_ingest),
            Surface.UNAUTHENTICATED: parse_limits(settings.rate_limit_unauthenticated),
        }

    async def hit(self, surface: Surface, key: str) -> int | None:
        """Count one request for ``key``; ``None`` if allowed, else the seconds to wait.

        The memory storage never suspends here (no lock is contended on one event loop), so
        the test of every rate and the hits that follow happen as one step.
        """
        rates = self._rates[surface]
        refused = [rate for rate in rates if not await self._limiter.test(rate, surface.value, key)]
        if not refused:
            for rate in rates:
                await self._limiter.hit(rate, surface.value, key)
            return None
        now = time.time()
        waits = [
            (await self._limiter.get_window_stats(r, surface.value, key)).reset_time - now for r in refused
        ]
        return max(1, math.ceil(max(waits)))
