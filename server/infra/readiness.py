"""Readiness: can this process write to its database right now?

A write transaction begins and commits (:meth:`server.infra.db.Database.check_writable`).
The result is reused for :data:`REUSE_SECONDS`, and concurrent probes share one check, so
probes never load the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from server.infra.clock import Clock
from server.infra.db import Database, is_unavailable

log = logging.getLogger(__name__)

REUSE_SECONDS = 1.0
# A readiness check that cannot finish in this time is a "no" (a paused database).
CHECK_TIMEOUT_SECONDS = 5.0


class Readiness:
    """This process's latest readiness check, reused for ``reuse`` seconds."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        reuse: float = REUSE_SECONDS,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._reuse = reuse
        self._timeout = timeout
        self._monotonic = monotonic
        self._last: tuple[float, bool] | None = None
        self._running: asyncio.Task[bool] | None = None
        self.checks = 0

    async def ready(self) -> bool:
        if self._last is not None and self._monotonic() - self._last[0] < self._reuse:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._check())
        task = self._running
        # Shielded: a probe that gives up never cancels the check others wait for.
        return await asyncio.shield(task)

    async def _check(self) -> bool:
        self.checks += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._db.check_writable(self._clock())
            ok = True
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("readiness check failed unexpectedly")
            else:
                log.warning("not ready: a write transaction cannot commit (%s)", exc)
            ok = False
        finally:
            self._running = None
        self._last = (self._monotonic(), ok)
        return ok
