"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness) for load balancers and supervisors.

Liveness answers whether the process serves requests at all: no database work, so it stays
cheap and says nothing about the database (restarting a server does not fix a database).
Readiness answers whether this process can do its job now: a write transaction begins and
commits (:meth:`server.db.Database.check_writable`). Its result is reused for
:data:`REUSE_SECONDS`, and concurrent probes share one check, so probes never load the
database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.db import Database, is_unavailable
from server.services_clock import Clock

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


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers. No database work."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when a write transaction can commit, else 503 with Retry-After."""
    readiness: Readiness = request.app.state.services.readiness
    if await readiness.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "reason": "the database cannot take writes right now"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
