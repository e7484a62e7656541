"""Connection pools that time their checkouts, for ``plm_db_pool_wait_seconds``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool
from sqlalchemy.pool.base import ConnectionPoolEntry


@dataclass
class PoolWaits:
    """Checkouts of pooled connections and the time spent getting them (waiting for a free
    one, or opening one): what ``plm_db_pool_wait_seconds`` shows."""

    checkouts: int = 0
    seconds: float = 0.0


class MeteredPool(QueuePool):
    """SQLAlchemy's queue pool, timing each checkout (two clock reads)."""

    waits: PoolWaits | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        waits = self.waits
        if waits is None:
            return super()._do_get()
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            waits.checkouts += 1
            waits.seconds += time.perf_counter() - started

    def recreate(self) -> Any:
        # Engine.dispose() replaces the pool with a new one of the same class.
        fresh = super().recreate()
        assert isinstance(fresh, MeteredPool)
        fresh.waits = self.waits
        return fresh


class MeteredAsyncPool(MeteredPool, AsyncAdaptedQueuePool):
    """The same, for asyncio drivers: SQLAlchemy's pool that waits without blocking the loop."""
