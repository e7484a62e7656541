"""Real loopback receivers (a Starlette app under a real uvicorn) and services that deliver to them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.changes import Actor
from server.domain.models import OutboxMessage, QueueAction, Role
from server.domain.webhooks import manage, urls
from server.domain.webhooks.tables import Webhook, WebhookFormat
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.runtime import Services
from tests.support import FakeClock, Tenant, serve_app

# Loopback receivers speak http on 127.0.0.1: what these flags exist for.
LOCAL = {"webhook_allow_http": True, "webhook_allow_private": True}


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers each path from its script (default 204), or hangs."""

    base: str = ""
    hits: list[Hit] = field(default_factory=list)
    # path -> status codes to answer in turn; the last one repeats.
    script: dict[str, list[int]] = field(default_factory=dict)
    # path -> requests to it wait for this event before answering (a hanging endpoint).
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def to(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        hit = Hit(path, dict(request.headers), await request.body())
        async with self.arrived:
            self.hits.append(hit)
            self.arrived.notify_all()
        if path in self.hold:
            await self.hold[path].wait()
        codes = self.script.get(path, [204])
        code = codes.pop(0) if len(codes) > 1 else codes[0]
        # A body a sender must never read, keep or show; a redirect it must not follow.
        headers = {"location": f"{self.base}/elsewhere"} if 300 <= code < 400 else None
        return Response(None if code in (204, 304) else f"SECRET-BODY-{code}", code, headers)

    async def wait_for(self, count: int, path: str | None = None, within: float = 10) -> list[Hit]:
        """Wait (up to ``within`` seconds) until ``count`` requests (to ``path``) have arrived."""

        def mine() -> list[Hit]:
            return self.hits if path is None else self.to(path)

        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: len(mine()) >= count)
        return mine()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["POST"])])
    async with serve_app(app) as base:
        rec.base = base
        yield rec
        for event in rec.hold.values():
            event.set()


@pytest.fixture
async def svc(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    services = Services(Settings(database_url=db_url, **LOCAL), db, clock)
    services.webhooks.start()  # woken by commits and freed slots, as in a running server
    yield services
    await services.webhooks.close(grace=0)


async def add_webhook(
    svc: Services,
    tenant: Tenant,
    url: str,
    *,
    format: WebhookFormat = WebhookFormat.STANDARD,
    actions: list[QueueAction] | None = None,
) -> manage.WithSecret:
    vetted = await urls.vet(url, urls.UrlPolicy(allow_http=True, allow_private=True))
    actor = Actor(tenant.account_id, tenant.admin_id, Role.ADMIN)
    async with svc.db.write() as session:
        return await manage.create(session, actor, vetted, format, actions, svc.clock())


async def send_due(svc: Services) -> int:
    """One tick of the webhook job, and every send started (by it, or by a commit's wake-up), to
    the end; how many this tick started."""
    started = await svc.webhooks.tick()
    await svc.webhooks.drain()
    return started


async def deliveries(db: Database, webhook_id: int | None = None) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook")  # type: ignore[arg-type]
    if webhook_id is not None:
        query = query.where(OutboxMessage.webhook_id == webhook_id)  # type: ignore[arg-type]
    async with db.read() as session:
        return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())  # type: ignore[arg-type]


async def webhook(db: Database, webhook_id: int) -> Webhook:
    async with db.read() as session:
        found = await session.get(Webhook, webhook_id)
    assert found is not None
    return found
