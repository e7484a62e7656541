"""Live queue events across server processes through PostgreSQL ``LISTEN``/``NOTIFY``.

:meth:`PostgresBroadcaster.stage` sends the transaction's events with ``pg_notify`` inside
the transaction itself. PostgreSQL delivers a notification only if that transaction
commits, and delivers notifications in commit order, so every process hears every commit
of every process exactly in the order it committed — including this process's own, which
is why :meth:`committed` does nothing here. One listening connection per process feeds the
process's :class:`~server.infra.broadcast.MemoryBroker`, which fans out to local subscribers with
the same bounded queues as the in-memory broadcaster.

A lost listening connection is reopened with backoff. Notifications sent while it was down
are gone, so on reconnecting every local subscriber is dropped as if it had fallen behind:
its client resyncs by query instead of silently missing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.events import QueueEvent
from server.infra.broadcast import (
    DEFAULT_SUBSCRIBER_QUEUE,
    Broadcaster,
    MemoryBroadcaster,
    MemoryBroker,
    Subscription,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0

CHANNEL = "plm_queue_events"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; stay well under it.
MAX_PAYLOAD = 7000


def chunk_payloads(events: Sequence[QueueEvent]) -> list[str]:
    """The events as JSON arrays, each small enough for one NOTIFY, in order."""
    payloads: list[str] = []
    current: list[str] = []
    size = 2
    for event in events:
        raw = event.to_json()
        if current and size + len(raw) + 1 > MAX_PAYLOAD:
            payloads.append("[" + ",".join(current) + "]")
            current, size = [], 2
        current.append(raw)
        size += len(raw) + 1
    if current:
        payloads.append("[" + ",".join(current) + "]")
    return payloads


def asyncpg_dsn(url: str) -> str:
    """``postgres://`` or ``postgresql[+asyncpg]://`` as the DSN asyncpg takes."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


class PostgresBroadcaster:
    def __init__(self, url: str, *, reconnect_max_seconds: float = 5.0) -> None:
        self.broker = MemoryBroker()
        self._dsn = asyncpg_dsn(url)
        self._reconnect_max = reconnect_max_seconds
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        # Set while the listening connection is up: tests and start() wait on it.
        self.listening = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        """Start listening; returns once the first connection listens (or keeps retrying)."""
        self._task = asyncio.create_task(self._listen_forever(), name="pg-broadcast-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stage(self, session: AsyncSession, events: Sequence[QueueEvent]) -> None:
        for payload in chunk_payloads(events):
            await session.execute(
                sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
            )

    def committed(self, events: Sequence[QueueEvent]) -> None:
        # Delivered by the listener, in commit order across every process, this one included.
        return None

    def subscribe(self, account_id: int, maxsize: int = DEFAULT_SUBSCRIBER_QUEUE) -> Subscription:
        return self.broker.subscribe(account_id, maxsize)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            events = [QueueEvent.from_json(json.dumps(item)) for item in json.loads(payload)]
        except (ValueError, KeyError, TypeError):
            log.exception("ignored a malformed queue notification")
            return
        self.broker.deliver(events)

    async def _listen_forever(self) -> None:
        delay = 0.1
        first = True
        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                if not first:
                    self.reconnects += 1
                    # Whatever was published while we were away is lost to our subscribers.
                    dropped = self.broker.drop_all()
                    log.warning("queue event listener reconnected; %d subscriber(s) told to resync", dropped)
                first = False
                delay = 0.1
                self.listening.set()
                await lost.wait()
                log.warning("queue event listener lost its PostgreSQL connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, reset, starting up, shutting down, timed out
                log.warning("queue event listener cannot connect (%s); retrying in %.1fs", exc, delay)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)


def make_broadcaster(broadcast_url: str) -> Broadcaster:
    """The broadcaster ``PLM_BROADCAST_URL`` names: ``memory://`` or ``postgres://…``."""
    if broadcast_url.startswith("postgres"):
        return PostgresBroadcaster(broadcast_url)
    return MemoryBroadcaster()
