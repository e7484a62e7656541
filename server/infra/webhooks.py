"""Webhook deliveries out of the outbox: claimed per endpoint, sent concurrently, never waited on.

Every process runs one :class:`WebhookDispatcher` (``Services.webhooks``). A tick (the
``webhooks`` job every second, and :meth:`~WebhookDispatcher.wake` right after a commit
that may have queued deliveries, or a send that freed a slot) claims due deliveries from
the outbox and starts one task per delivery, then returns: it never waits for a receiver.

* **Isolation.** At most :data:`PER_ENDPOINT` sends per endpoint are in flight in a
  process, and a claim takes only endpoints with a free slot (``outbox.claim``'s
  ``per_destination``), oldest first. An endpoint that hangs for its whole timeout holds
  its own slots only: every other endpoint's deliveries are claimed and sent meanwhile.
* **A bound.** At most :data:`MAX_IN_FLIGHT` sends per process, and the HTTP client has
  as many connections, so no request waits for a connection another one holds.
* **Several processes.** The job is not leased: each process claims with
  ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two never take the same delivery; a claim
  lasts :data:`CLAIM_SECONDS`, after which a delivery whose sender died is due again (with
  the same ``webhook-id``: at least once).
* Outcomes (:mod:`server.domain.webhooks.outcomes`) are written one transaction per delivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import httpx
import sqlalchemy as sa
from sqlmodel import col

from server.domain.models import utcnow
from server.domain.notifications.digests import pending_tab_url
from server.domain.webhooks import outcomes, urls
from server.domain.webhooks.payload import TEST_TYPE
from server.domain.webhooks.tables import Webhook
from server.infra import outbox, webhook_http
from server.infra.clock import Clock
from server.infra.db import Database
from server.infra.outbox import Kind, Message
from server.infra.settings import Settings
from server.infra.tasks import finish_or_cancel

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
PER_ENDPOINT = 8
CLAIM_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0


def policy_of(settings: Settings) -> urls.UrlPolicy:
    return urls.UrlPolicy(settings.webhook_allow_http, settings.webhook_allow_private)


class WebhookDispatcher:
    """This process's webhook sender (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        timeout: float = webhook_http.TIMEOUT_SECONDS,
        max_in_flight: int = MAX_IN_FLIGHT,
        per_endpoint: int = PER_ENDPOINT,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.policy = policy_of(settings)
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.per_endpoint = per_endpoint
        self.wall = wall
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()
        self._tick_lock = asyncio.Lock()
        self._waker: asyncio.Task[None] | None = None
        self._wanted = False
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # ------------------------------------------------------------------ ticks

    async def tick(self) -> int:
        """Claim what is due and start sending it; returns how many sends started."""
        if self._closed:
            return 0
        async with self._tick_lock:
            free = self.max_in_flight - len(self._tasks)
            if free <= 0:
                return 0
            now = self.clock()
            full = [d for d, n in self._busy.items() if n >= self.per_endpoint]
            # A read first: an idle tick (most of them) never takes the write lock.
            if not await outbox.has_due(self.db, Kind.WEBHOOK, now, full):
                return 0
            claimed = await outbox.claim(
                self.db,
                now,
                free,
                kind=Kind.WEBHOOK,
                claim_seconds=CLAIM_SECONDS,
                per_destination=self.per_endpoint,
                busy=self._busy,
            )
            if not claimed:
                return 0
            hooks = await self._webhooks({int(m.destination) for m in claimed})
            for message in claimed:
                self._start(message, hooks.get(int(message.destination)))
            return len(claimed)

    def wake(self) -> None:
        """Tick soon, in this process (coalesced: one pending tick at most)."""
        if self._closed:
            return
        self._wanted = True
        if self._waker is not None and not self._waker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the scheduled tick will come
        self._waker = loop.create_task(self._woken(), name="webhooks-wake")

    async def _woken(self) -> None:
        while self._wanted and not self._closed:
            self._wanted = False
            try:
                await self.tick()
            except Exception as exc:
                log.warning("webhook delivery tick failed: %s", exc)

    async def _webhooks(self, ids: set[int]) -> dict[int, Webhook]:
        async with self.db.read() as session:
            rows = (await session.execute(sa.select(Webhook).where(col(Webhook.id).in_(ids)))).scalars()
            return {w.id: w for w in rows if w.id is not None}

    def _start(self, message: Message, webhook: Webhook | None) -> None:
        self._busy[message.destination] += 1
        self._idle.clear()
        task = asyncio.create_task(self._deliver(message, webhook), name=f"webhook-{message.key}")
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, message.destination))

    def _done(self, task: asyncio.Task[None], destination: str) -> None:
        self._tasks.discard(task)
        self._busy[destination] -= 1
        if self._busy[destination] <= 0:
            del self._busy[destination]
        if not self._tasks:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed unexpectedly", exc_info=task.exception())
        # A slot is free: more may be waiting for this endpoint, or for the bound.
        self.wake()

    # ------------------------------------------------------------------ one delivery

    async def _deliver(self, message: Message, webhook: Webhook | None) -> None:
        if webhook is None:
            return  # deleted with its deliveries
        is_test = json.loads(message.payload).get("type") == TEST_TYPE
        attempt = outcomes.Attempt(
            id=message.id,
            webhook_id=int(message.destination),
            attempts=message.attempts,
            created_at=message.created_at or self.clock(),
            is_test=is_test,
        )
        if not webhook.enabled and not is_test:
            async with self.db.write() as session:
                await outcomes.skipped(session, attempt, "not sent: the webhook is disabled")
            return
        outcome = await self._attempt(message, webhook)
        now = self.clock()
        async with self.db.write() as session:
            if outcome.delivered:
                assert outcome.code is not None
                await outcomes.delivered(session, attempt, outcome.code, now)
                return
            disabled = await outcomes.failed(
                session, attempt, now, outcome.describe(), outcome.code, gone=outcome.gone
            )
        if disabled:
            log.warning("webhook %s disabled: %s", webhook.id, disabled)

    async def _attempt(self, message: Message, webhook: Webhook) -> webhook_http.Outcome:
        try:
            urls.parse(webhook.url, self.policy)  # the settings may have changed since
        except Exception as exc:
            return webhook_http.Outcome(None, f"refused: {exc}")
        request = webhook_http.build(
            webhook,
            message.key,
            message.payload,
            now=self.clock(),
            wall=self.wall(),
            link=pending_tab_url(self.settings),
        )
        if self._http is None:
            self._http = webhook_http.client(self.policy, self.max_in_flight)
        return await webhook_http.post(self._http, request, self.timeout)

    # ------------------------------------------------------------------ tests, shutdown

    async def drain(self) -> None:
        """Wait until no tick runs and no send is in flight (tests and benchmarks)."""
        while True:
            if self._waker is not None and not self._waker.done():
                await asyncio.wait([self._waker])
            async with self._tick_lock:
                pass  # a tick between its claim and its sends' start
            await self._idle.wait()
            if not self._tasks and (self._waker is None or self._waker.done()):
                return

    async def close(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop ticking, give sends in flight ``grace`` seconds, then cancel them (a cancelled
        delivery is due again once its claim lapses) and close the HTTP client."""
        self._closed = True
        if self._waker is not None:
            self._waker.cancel()
            await asyncio.gather(self._waker, return_exceptions=True)
        await finish_or_cancel(set(self._tasks), grace, "a webhook delivery")
        if self._http is not None:
            await self._http.aclose()
            self._http = None
