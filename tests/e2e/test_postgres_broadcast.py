"""Live events across processes through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from server.domain import actions
from server.domain.events import QueueEvent
from server.domain.models import QueueAction
from server.infra.broadcast import LOST_EVENT_STREAM, SubscriberOverflow
from server.infra.db import Database
from server.infra.pg_broadcast import PostgresBroadcaster, chunk_payloads
from tests import pg
from tests.server.domain import admin, arrive
from tests.support import START, ServerProcess, batch_body, make_tenant, plm


@pytest.fixture
def pg_url(postgres: pg.PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
async def two_processes(pg_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two databases on one PostgreSQL, each with its own listener: two processes' worth."""
    a = Database(pg_url, broadcaster=PostgresBroadcaster(pg_url))
    b = Database(pg_url, broadcaster=PostgresBroadcaster(pg_url))
    await a.broadcaster.start()
    await b.broadcaster.start()
    yield a, b
    for d in (a, b):
        await d.broadcaster.stop()
        await d.dispose()


async def next_events(sub: object, n: int) -> list[QueueEvent]:
    got: list[QueueEvent] = []
    iterator = sub.__aiter__()  # type: ignore[attr-defined]
    while len(got) < n:
        got.append(await asyncio.wait_for(iterator.__anext__(), timeout=10))
    return got


async def test_every_process_hears_every_commit_in_commit_order(
    two_processes: tuple[Database, Database],
) -> None:
    a, b = two_processes
    tenant = await make_tenant(a, licenses=0)
    on_a, on_b = a.broadcaster.subscribe(tenant.account_id), b.broadcaster.subscribe(tenant.account_id)
    other = b.broadcaster.subscribe(tenant.account_id + 1000)
    ids = [(await arrive(a, tenant.account_id, f"PC-{i}", f"u{i}")).user_id for i in range(3)]
    async with b.write() as s:
        await actions.remove(s, admin(tenant.account_id), [ids[1]], False, START)
    with pytest.raises(RuntimeError):
        async with a.write() as s:
            await actions.remove(s, admin(tenant.account_id), [ids[0]], False, START)
            raise RuntimeError("rolled back: no event")
    async with a.write() as s:
        await actions.remove(s, admin(tenant.account_id), [ids[2]], False, START)
    expected = [(QueueAction.ENTERED, i) for i in ids] + [
        (QueueAction.REMOVED, ids[1]),
        (QueueAction.REMOVED, ids[2]),
    ]
    for sub in (on_a, on_b):
        got = await next_events(sub, 5)
        assert [(e.action, e.user_id) for e in got] == expected
        assert [e.queue_version for e in got] == sorted(e.queue_version for e in got)
    assert other._queue.empty()
    for sub in (on_a, on_b, other):
        sub.close()


async def test_a_lost_listener_reconnects_and_its_subscribers_are_told_to_resync(
    two_processes: tuple[Database, Database], postgres: pg.PostgresServer
) -> None:
    a, b = two_processes
    tenant = await make_tenant(a, licenses=0)
    listener = b.broadcaster
    assert isinstance(listener, PostgresBroadcaster)
    stale = listener.subscribe(tenant.account_id)
    conn = await asyncpg.connect(postgres.dsn())
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    with pytest.raises(SubscriberOverflow) as cut:
        await next_events(stale, 1)
    # Told what happened (no, it did not fall behind), and still to resync.
    assert cut.value.reason == LOST_EVENT_STREAM
    await asyncio.wait_for(listener.listening.wait(), timeout=10)
    assert listener.reconnects >= 1
    fresh = listener.subscribe(tenant.account_id)
    entered = await arrive(a, tenant.account_id, "PC-9", "late")
    (event,) = await next_events(fresh, 1)
    assert (event.action, event.user_id) == (QueueAction.ENTERED, entered.user_id)
    fresh.close()


def test_big_transactions_are_split_into_notifications_under_the_limit() -> None:
    from server.domain.events import AccountUsage

    usage = AccountUsage(1, 10, 10, 500, False)
    events = [QueueEvent(QueueAction.REMOVED, 1, i, START, 1, usage, i) for i in range(500)]
    payloads = chunk_payloads(events)
    assert len(payloads) > 1 and all(len(p) < 8000 for p in payloads)
    assert [e["user_id"] for p in payloads for e in json.loads(p)] == list(range(500))


async def test_a_subscriber_on_one_process_hears_arrivals_on_another(pg_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env.update(
        PLM_DATABASE_URL=pg_url, PLM_BROADCAST_URL=pg_url.replace("+asyncpg", ""), PLM_LOG_LEVEL="warning"
    )
    account = plm(env, "account", "create", "--name", "Acme", "--licenses", "1")
    token = plm(
        env, "admin", "create", "--account", account["id"], "--email", "a@acme.example", "--name", "Ann"
    )["token"]
    one, two = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        transport = WebsocketsTransport(
            url=one.url.replace("http", "ws") + "/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {token}"},
        )
        received: list[dict[str, object]] = []
        async with Client(transport=transport) as session:
            subscription = session.subscribe(gql("subscription { pendingQueueChanged { action userId } }"))
            listening = asyncio.ensure_future(subscription.__anext__())
            # The subscription is registered once a probe event arrives: ingest on process two
            # until the first event reaches process one (no fixed sleep).
            async with httpx.AsyncClient(base_url=two.url, timeout=30) as http:
                headers = {"Authorization": f"Bearer {account['ingestKey']}"}
                sent: list[str] = []
                for i in range(100):
                    r = await http.post("/ingest", json=batch_body(f"PC-{i}", f"user{i}"), headers=headers)
                    if r.json()["status"] == "PENDING":
                        sent.append(r.json()["userId"])
                    done, _ = await asyncio.wait({listening}, timeout=0.2)
                    if done:
                        break
                received.append(listening.result())
                more = [
                    (await http.post("/ingest", json=batch_body(f"X-{i}", f"x{i}"), headers=headers)).json()[
                        "userId"
                    ]
                    for i in range(5)
                ]
            first = str(received[0]["pendingQueueChanged"]["userId"])  # type: ignore[index]
            # Everything from the first event heard on is heard, in order: the rest of the
            # probes and then five more arrivals.
            expected = [*sent[sent.index(first) :], *more]
            for _ in range(len(expected) - 1):
                received.append(await asyncio.wait_for(subscription.__anext__(), timeout=10))
            await subscription.aclose()
        heard = [e["pendingQueueChanged"]["userId"] for e in received]  # type: ignore[index]
        assert heard == expected
    finally:
        one.stop()
        two.stop()
