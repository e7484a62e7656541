"""Two ``plm serve`` processes on one PostgreSQL deliver each event once per endpoint (docs/behaviour.md, Webhooks).

Both processes hear every commit (``PLM_BROADCAST_URL`` is the database), so both are woken
and claim webhook deliveries at the same moments: ``FOR UPDATE SKIP LOCKED`` must keep them
from taking the same one.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from server.domain.models import OutboxMessage, OutboxStatus
from server.infra.db import Database
from tests import pg
from tests.support import ServerProcess, batch_body, plm
from tests.webhooks.conftest import Receiver, receiver  # noqa: F401  (the fixture)

CREATE = (
    """mutation($url: String!) { createWebhook(input: {url: $url}) { webhook { id } errors { message } } }"""
)
EVENTS = 150
ENDPOINTS = 3


@pytest.fixture
def pg_url(postgres: pg.PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


async def test_two_processes_deliver_each_event_exactly_once_per_endpoint(
    pg_url: str,
    receiver: Receiver,  # noqa: F811
) -> None:
    url = pg_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env.update(
        {
            "PLM_DATABASE_URL": url,
            "PLM_BROADCAST_URL": url.replace("postgresql+asyncpg://", "postgres://"),
            "PLM_LOG_LEVEL": "warning",
            "PLM_WEBHOOK_ALLOW_HTTP": "1",
            "PLM_WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )
    servers: list[ServerProcess] = []
    try:
        servers = [ServerProcess(env).start(), ServerProcess(env).start()]
        account = plm(env, "account", "create", "--name", "Acme", "--licenses", "0")
        admin = plm(
            env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "A"
        )
        auth = {"Authorization": f"Bearer {admin['token']}"}
        ingest = {"Authorization": f"Bearer {account['ingestKey']}"}
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(ENDPOINTS):
                made = await http.post(
                    f"{servers[i % 2].url}/graphql",
                    json={"query": CREATE, "variables": {"url": receiver.url(f"ep{i}")}},
                    headers=auth,
                )
                assert made.json()["data"]["createWebhook"]["errors"] == []
            # Arrivals through both processes at once: each commit wakes both dispatchers
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{servers[i % 2].url}/ingest", json=batch_body(f"PC-{i}", f"u{i}"), headers=ingest
                    )
                    for i in range(EVENTS)
                )
            )
        assert {a.json()["status"] for a in answers} == {"PENDING"}
        # Generous: two servers, this test and its receiver share the machine's cores.
        await receiver.wait_for(EVENTS * ENDPOINTS, within=90)
        for s in servers:
            s.stop()  # SIGTERM: sends in flight finish and record their outcome first
        per_endpoint = Counter(h.path for h in receiver.hits)
        assert per_endpoint == {f"ep{i}": EVENTS for i in range(ENDPOINTS)}
        assert set(Counter((h.path, h.headers["webhook-id"]) for h in receiver.hits).values()) == {1}
        users = Counter((h.path, h.json["data"]["userId"]) for h in receiver.hits)
        assert len(users) == EVENTS * ENDPOINTS and set(users.values()) == {1}
        db = Database(url)
        try:
            async with db.read() as session:
                statuses = Counter(
                    (
                        await session.execute(
                            sa.select(OutboxMessage.status).where(OutboxMessage.kind == "webhook")  # type: ignore[arg-type]
                        )
                    ).scalars()
                )
        finally:
            await db.dispose()
        assert statuses == {OutboxStatus.SENT: EVENTS * ENDPOINTS}
    finally:
        for s in servers:
            s.stop()
