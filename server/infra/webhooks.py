"""Webhook deliveries out of the outbox: claimed per endpoint, sent concurrently, never waited on.

Every process runs one :class:`WebhookDispatcher` (``Services.webhooks``). A tick (the
``webhooks`` job every second, and :meth:`~WebhookDispatcher.wake` right after a commit
that may have queued deliveries, or a send that freed a slot) claims due deliveries from
the outbox and starts one task per delivery, then returns: it never waits for a receiver.

* **Isolation.** At most :data:`PER_ENDPOINT` sends per endpoint are in flight in a
  process, and a claim takes, oldest first, only what an endpoint's slots can start now or
  right after (``outbox.claim``'s ``per_destination``; :data:`PREFETCH`). An endpoint that
  hangs for its whole timeout holds its own slots only: every other endpoint's deliveries
  are claimed and sent meanwhile.
* **A bound.** At most :data:`MAX_IN_FLIGHT` sends per process. Each endpoint has its own
  HTTP client with as many connections as it has send slots, so no request waits for (or
  is scanned past) a connection of another endpoint.
* **Several processes.** The job is not leased: each process claims with
  ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two never take the same delivery; a claim
  lasts :data:`CLAIM_SECONDS`, after which a delivery whose sender died is due again (with
  the same ``webhook-id``: at least once).
* Outcomes (:mod:`server.domain.webhooks.outcomes`) of the sends that finish together are
  written in one transaction (a group commit), so deliveries never crowd out arrivals.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, OrderedDict, deque
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
# Claims held per send slot: the next send of an endpoint starts as soon as one ends.
PREFETCH = 2
# How long an outcome waits for others to share its transaction (its send is already done).
FLUSH_WINDOW_SECONDS = 0.02
# HTTP clients kept (one per endpoint recently sent to); idle ones beyond are closed.
MAX_CLIENTS = 256
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
        # One HTTP client (and connection pool) per endpoint, least recently used last.
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        # Per endpoint (its id as the outbox destination): sends in flight, claims waiting.
        self._sending: Counter[str] = Counter()
        self._queued: dict[str, deque[tuple[Message, Webhook | None]]] = {}
        self._tick_lock = asyncio.Lock()
        self._waker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[outcomes.Attempt, webhook_http.Outcome | None, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wanted = False
        self._closed = False
        self._started = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return sum(self._sending.values())

    def _held(self, destination: str) -> int:
        """Claimed by this process for ``destination``: being sent, or waiting to be."""
        return self._sending[destination] + len(self._queued.get(destination, ()))

    # ------------------------------------------------------------------ ticks

    async def tick(self) -> int:
        """Claim what is due and start sending it; returns how many were claimed.

        A process holds at most :data:`PREFETCH` times its send bounds in claims, so a send
        that finishes starts the next one of its endpoint without a database round trip.
        """
        if self._closed:
            return 0
        async with self._tick_lock:
            held = {d: n for d in set(self._sending) | set(self._queued) if (n := self._held(d))}
            room = PREFETCH * self.max_in_flight - sum(held.values())
            per_destination = PREFETCH * self.per_endpoint
            if room <= 0:
                return 0
            now = self.clock()
            full = [d for d, n in held.items() if n >= per_destination]
            # A read first: an idle tick (most of them) never takes the write lock.
            if not await outbox.has_due(self.db, Kind.WEBHOOK, now, full):
                return 0
            claimed = await outbox.claim(
                self.db,
                now,
                room,
                kind=Kind.WEBHOOK,
                claim_seconds=CLAIM_SECONDS,
                per_destination=per_destination,
                busy=held,
            )
            if not claimed:
                return 0
            hooks = await self._webhooks({int(m.destination) for m in claimed})
            for message in claimed:
                self._queued.setdefault(message.destination, deque()).append(
                    (message, hooks.get(int(message.destination)))
                )
            self._idle.clear()
            self._pump()
            return len(claimed)

    def start(self) -> None:
        """Send on wake-ups from now on: after each commit of queue events in this process
        (in every process, with a PostgreSQL broadcaster), and as sends free their slots."""
        if not self._started:
            self._started = True
            self.db.broadcaster.broker.listen(self.wake)

    def wake(self) -> None:
        """Tick soon, in this process (coalesced: one pending tick at most); nothing before
        :meth:`start` (a process that runs no jobs, a test driving ticks itself)."""
        if self._closed or not self._started:
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

    def _pump(self) -> None:
        """Start every queued send that has a slot: its endpoint's, and the process's."""
        total = self.in_flight
        for destination, queue in list(self._queued.items()):
            while queue and self._sending[destination] < self.per_endpoint and total < self.max_in_flight:
                message, webhook = queue.popleft()
                self._sending[destination] += 1
                total += 1
                task = asyncio.create_task(self._deliver(message, webhook), name=f"webhook-{message.key}")
                self._tasks.add(task)
                task.add_done_callback(self._done)
            if not queue:
                del self._queued[destination]

    def _sent(self, destination: str) -> None:
        """A send's slot is free (its outcome is still being written): start the next one."""
        self._sending[destination] -= 1
        if self._sending[destination] <= 0:
            del self._sending[destination]
        self._pump()
        if len(self._queued.get(destination, ())) <= self.per_endpoint // 2:
            self.wake()  # claim more for it, a few at a time rather than one per send

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks and not self._queued:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed unexpectedly", exc_info=task.exception())

    # ------------------------------------------------------------------ one delivery

    async def _deliver(self, message: Message, webhook: Webhook | None) -> None:
        try:
            result = await self._send(message, webhook)
        finally:
            self._sent(message.destination)
        if result is not None:
            await self._record(*result)

    async def _send(
        self, message: Message, webhook: Webhook | None
    ) -> tuple[outcomes.Attempt, webhook_http.Outcome | None] | None:
        """The attempt and its outcome (``None``: skipped); ``None`` for a deleted webhook."""
        if webhook is None:
            return None  # deleted with its deliveries
        is_test = json.loads(message.payload).get("type") == TEST_TYPE
        attempt = outcomes.Attempt(
            id=message.id,
            webhook_id=int(message.destination),
            attempts=message.attempts,
            created_at=message.created_at or self.clock(),
            is_test=is_test,
        )
        if not webhook.enabled and not is_test:
            return attempt, None
        return attempt, await self._attempt(message, webhook)

    async def _record(self, attempt: outcomes.Attempt, outcome: webhook_http.Outcome | None) -> None:
        """Write an outcome (``None``: skipped, the webhook is disabled) with the others that
        finished meanwhile, in one transaction: a commit per delivery would hold the (SQLite)
        write lock so often that arrivals wait behind the deliveries they cause."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((attempt, outcome, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="webhook-outcomes")
        await done

    async def _flush(self) -> None:
        while self._outcomes:
            await asyncio.sleep(FLUSH_WINDOW_SECONDS)  # sends finishing meanwhile join in
            batch, self._outcomes = self._outcomes, []
            disabled: list[str] = []
            try:
                async with self.db.write() as session:
                    now = self.clock()
                    accepted = [(a, o.code) for a, o, _ in batch if o is not None and o.code and o.delivered]
                    if accepted:
                        await outcomes.delivered(session, accepted, now)
                    for attempt, outcome, _ in batch:
                        if outcome is None:
                            await outcomes.skipped(session, attempt, "not sent: the webhook is disabled")
                        elif outcome.delivered:
                            continue
                        elif reason := await outcomes.failed(
                            session, attempt, now, outcome.describe(), outcome.code, gone=outcome.gone
                        ):
                            disabled.append(f"webhook {attempt.webhook_id} disabled: {reason}")
            except Exception as exc:
                # Left claimed: due again once the claim lapses (the same webhook-id, at least once).
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for line in disabled:
                log.warning("%s", line)
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

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
        return await webhook_http.post(self._client(message.destination), request, self.timeout)

    def _client(self, destination: str) -> httpx.AsyncClient:
        """The endpoint's own client: its pool holds only its connections (at most its send
        slots), so no endpoint ever waits for, or scans, another's."""
        client = self._clients.get(destination)
        if client is None:
            client = self._clients[destination] = webhook_http.client(self.policy, self.per_endpoint)
            while len(self._clients) > MAX_CLIENTS:
                idle = next((d for d in self._clients if d not in self._sending), None)
                if idle is None:
                    break
                old = self._clients.pop(idle)
                self._closing.add(asyncio.create_task(old.aclose()))
                self._closing = {t for t in self._closing if not t.done()}
        self._clients.move_to_end(destination)
        return client

    # ------------------------------------------------------------------ tests, shutdown

    async def drain(self) -> None:
        """Wait until no tick runs and no send is in flight (tests and benchmarks)."""
        while True:
            if self._waker is not None and not self._waker.done():
                await asyncio.wait([self._waker])
            async with self._tick_lock:
                pass  # a tick between its claim and its sends' start
            await self._idle.wait()
            if not self._tasks and not self._queued and (self._waker is None or self._waker.done()):
                return

    async def close(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop ticking, give sends in flight ``grace`` seconds, then cancel them (a cancelled
        delivery is due again once its claim lapses) and close the HTTP client."""
        self._closed = True
        if self._waker is not None:
            self._waker.cancel()
            await asyncio.gather(self._waker, return_exceptions=True)
        # Claims not started stay claimed: due again once the claim lapses.
        self._queued.clear()
        await finish_or_cancel(set(self._tasks), grace, "a webhook delivery")
        clients, self._clients = list(self._clients.values()), OrderedDict()
        await asyncio.gather(*(c.aclose() for c in clients), *self._closing, return_exceptions=True)
